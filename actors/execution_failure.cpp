#include "actors/execution_failure.hpp"

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/messages.hpp"
#include "eventstore/codec.hpp"

namespace cerebelum::actors {

namespace {

eventstore::result<eventstore::append_ack>
try_fail(engine_context& ctx, const std::string& id,
         const std::string& message) {
  auto row = ctx.store().get_execution(id);
  if (!row) return row.err();
  if (!row->has_value())
    return eventstore::make_error(eventstore::errc::invalid_argument,
                                  "no execution " + id);
  auto& r = **row;
  if (eventstore::is_terminal(r.status))
    return eventstore::append_ack{r.next_seq, r.next_seq};
  eventstore::append_request req;
  req.execution_id = id;
  req.expected_next_seq = r.next_seq;
  events::Event ev;
  auto now = now_ms();
  ev.set_seq(r.next_seq);
  ev.set_recorded_at_ms(now);
  auto* f = ev.mutable_execution_failed();
  f->mutable_error()->set_kind("crashed");
  f->mutable_error()->set_message(message);
  f->set_failed_at_ms(now);
  auto enc = eventstore::encode(ev);
  if (!enc) return enc.err();
  enc->recorded_at_ms = now;
  req.events.push_back(std::move(*enc));
  req.index.status = eventstore::execution_status::failed;
  req.index.workflow = r.workflow;
  req.index.workflow_version = r.workflow_version;
  req.index.phase = r.phase;
  req.index.created_at_ms = r.created_at_ms;
  req.index.updated_at_ms = now;
  if (auto timers = ctx.store().timers_of(id))
    for (auto& t : *timers)
      req.timer_deletes.push_back(t.timer_id);
  if (auto tasks = ctx.store().tasks_of(id))
    for (auto& t : *tasks)
      req.task_deletes.push_back(t.task_id);
  return ctx.writer().append_and_wait(std::move(req));
}

} // namespace

void fail_after_crashes(engine_context& ctx, const std::string& id, int crashes,
                        const std::string& reason) {
  auto message = "the execution's actor crashed " + std::to_string(crashes)
                 + " times; last: " + reason;
  for (int i = 0; i < 5; ++i) {
    auto res = try_fail(ctx, id, message);
    if (res) {
      spdlog::error("execution {} marked failed: {}", id, message);
      ctx.forget_crashes(id);
      caf::anon_send(ctx.engine(), finished_atom::value, id);
      return;
    }
    if (res.err().code != eventstore::errc::conflict) {
      spdlog::error("cannot mark execution {} failed: {}", id,
                    eventstore::to_string(res.err()));
      return;
    }
  }
}

} // namespace cerebelum::actors
