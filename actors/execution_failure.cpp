#include "actors/execution_failure.hpp"

#include <algorithm>

#include "actors/history.hpp"
#include "eventstore/codec.hpp"

namespace cerebelum::actors {

namespace {

events::Event failed_event(std::int64_t seq, const std::string& message,
                           std::int64_t now,
                           const std::string& kind = "crashed") {
  events::Event ev;
  ev.set_seq(seq);
  ev.set_recorded_at_ms(now);
  auto* f = ev.mutable_execution_failed();
  f->mutable_error()->set_kind(kind);
  f->mutable_error()->set_message(message);
  f->set_failed_at_ms(now);
  return ev;
}

/// Adds the task rows the store holds for `id` that `req` does not delete
/// yet (a row the state no longer knows of must not stay leasable).
void drop_all_tasks(engine_context& ctx, const std::string& id,
                    eventstore::append_request& req) {
  auto tasks = ctx.store().tasks_of(id);
  if (!tasks) return;
  auto& dels = req.task_deletes;
  for (auto& t : *tasks)
    if (std::find(dels.begin(), dels.end(), t.task_id) == dels.end())
      dels.push_back(t.task_id);
}

} // namespace

std::string crash_message(int crashes, const std::string& reason) {
  return "the execution's actor crashed " + std::to_string(crashes)
         + " times; last: " + reason;
}

eventstore::append_request crash_failure(engine_context& ctx,
                                         workflow::execution_state& state,
                                         const std::string& message) {
  return engine_failure(ctx, state, "crashed", message);
}

eventstore::append_request
engine_failure(engine_context& ctx, workflow::execution_state& state,
               const std::string& kind, const std::string& message) {
  auto seq = state.next_seq();
  auto before = capture_rows(state);
  auto now = ctx.now_ms();
  auto ev = failed_event(seq, message, now, kind);
  if (!state.apply(ev))
    throw std::runtime_error("cannot fold execution_failed");
  auto req = make_append(state, seq, {ev}, before, {}, now);
  drop_all_tasks(ctx, state.execution_id(), req);
  return req;
}

namespace {

/// The append that ends execution `id` with `evs` (numbered from its index
/// row's next seq) in `status`, from its index row alone.
eventstore::result<std::optional<eventstore::append_request>>
end_from_row(engine_context& ctx, const std::string& id,
             std::vector<events::Event> evs,
             eventstore::execution_status status) {
  auto row = ctx.store().get_execution(id);
  if (!row) return row.err();
  if (!row->has_value())
    return eventstore::make_error(eventstore::errc::invalid_argument,
                                  "no execution " + id);
  auto& r = **row;
  if (eventstore::is_terminal(r.status))
    return std::optional<eventstore::append_request>{};
  eventstore::append_request req;
  req.execution_id = id;
  req.expected_next_seq = r.next_seq;
  auto now = ctx.now_ms();
  auto seq = r.next_seq;
  for (auto& ev : evs) {
    ev.set_seq(seq++);
    ev.set_recorded_at_ms(now);
    auto enc = eventstore::encode(ev);
    if (!enc) return enc.err();
    enc->recorded_at_ms = now;
    req.events.push_back(std::move(*enc));
  }
  req.index.status = status;
  req.index.workflow = r.workflow;
  req.index.workflow_version = r.workflow_version;
  req.index.phase = r.phase;
  req.index.created_at_ms = r.created_at_ms;
  req.index.updated_at_ms = now;
  if (auto timers = ctx.store().timers_of(id))
    for (auto& t : *timers)
      req.timer_deletes.push_back(t.timer_id);
  drop_all_tasks(ctx, id, req);
  return std::optional<eventstore::append_request>{std::move(req)};
}

} // namespace

eventstore::result<std::optional<eventstore::append_request>>
crash_failure_from_row(engine_context& ctx, const std::string& id,
                       const std::string& message) {
  auto now = ctx.now_ms();
  return end_from_row(ctx, id, {failed_event(0, message, now)},
                      eventstore::execution_status::failed);
}

eventstore::result<std::optional<eventstore::append_request>>
cancel_from_row(engine_context& ctx, const std::string& id,
                const operator_id& who, const std::string& reason) {
  auto now = ctx.now_ms();
  events::Event asked;
  auto* c = asked.mutable_cancel_requested();
  c->set_by(who.by);
  c->set_by_note(who.note);
  c->set_reason(reason);
  c->set_requested_at_ms(now);
  events::Event done;
  auto* d = done.mutable_execution_cancelled();
  d->set_by(who.by);
  d->set_by_note(who.note);
  d->set_reason(reason);
  d->set_cancelled_at_ms(now);
  return end_from_row(ctx, id, {std::move(asked), std::move(done)},
                      eventstore::execution_status::cancelled);
}

} // namespace cerebelum::actors
