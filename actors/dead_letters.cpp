#include "actors/dead_letters.hpp"

#include <caf/send.hpp>

#include "actors/history.hpp"
#include "actors/messages.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::actors {

namespace {

dead_letter_view to_view(const eventstore::dead_letter_row& row) {
  dead_letter_view v;
  v.id = row.id;
  v.task_id = row.task_id;
  v.execution_id = row.execution_id;
  v.queue = row.queue;
  v.attempt = static_cast<std::uint32_t>(row.attempt);
  v.failed_at_ms = row.failed_at_ms;
  auto payload = workflow::parse_json_text(row.payload);
  if (payload.is_object()) {
    v.workflow = payload.value("workflow", std::string{});
    v.step = payload.value("step", std::string{});
    v.map_index = payload.value("map_index", -1);
    v.task_type = payload.value("target", std::string{});
    if (auto i = payload.find("input"); i != payload.end())
      v.input_json = workflow::json_text(*i);
  }
  auto err = workflow::parse_json_text(row.error);
  if (err.is_object()) {
    v.error_kind = err.value("kind", std::string{});
    v.error_message = err.value("message", std::string{});
    if (auto i = err.find("details"); i != err.end() && !i->is_null())
      v.error_details_json = workflow::json_text(*i);
    v.error_retryable = err.value("retryable", false);
  }
  return v;
}

template <class T>
task_result<T> store_failure(const eventstore::error& err) {
  return task_result<T>::fail(task_errc::unavailable,
                              "store: " + eventstore::to_string(err));
}

} // namespace

task_result<dead_letter_list>
list_dead_letters(engine_context& ctx, const std::string& queue,
                  std::size_t page_size, const std::string& page_token) {
  using res_t = task_result<dead_letter_list>;
  if (page_size == 0) page_size = 100;
  page_size = std::min<std::size_t>(page_size, 1000);
  auto page = ctx.store().list_dead_letters(queue, page_size, page_token);
  if (!page) {
    if (page.err().code == eventstore::errc::invalid_argument)
      return res_t::fail(task_errc::invalid_argument, page.err().message);
    return store_failure<dead_letter_list>(page.err());
  }
  dead_letter_list out;
  for (auto& row : page->rows)
    out.items.push_back(to_view(row));
  out.next_page_token = page->next_page_token;
  return res_t::ok(std::move(out));
}

task_result<std::string> retry_dead_letter(engine_context& ctx, std::int64_t id,
                                           const std::string& by) {
  using res_t = task_result<std::string>;
  if (by.empty())
    return res_t::fail(task_errc::invalid_argument,
                       "name the operator who retries (by)");
  if (auto bad = workflow::check_text("by", by, workflow::max_name_bytes,
                                      workflow::text_rule::label))
    return res_t::fail(task_errc::invalid_argument, std::move(*bad));
  auto row = ctx.store().get_dead_letter(id);
  if (!row) return store_failure<std::string>(row.err());
  if (!*row)
    return res_t::fail(task_errc::not_found,
                       "no dead letter with id " + std::to_string(id));
  const auto& dl = **row;
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto loaded = load_execution(ctx, dl.execution_id);
    if (!loaded)
      return res_t::fail(task_errc::unavailable,
                         "cannot load execution " + dl.execution_id + ": "
                           + caf::to_string(loaded.error()));
    auto& s = *loaded->state;
    auto info = s.dead_letter();
    if (s.status() != workflow::execution_status::failed || !info
        || info->attempt_token != dl.task_id)
      return res_t::fail(task_errc::not_retryable,
                         "execution " + dl.execution_id + " is "
                           + workflow::to_string(s.status())
                           + ", not failed by the task of dead letter "
                           + std::to_string(id));
    events::Event ev;
    ev.set_seq(s.next_seq());
    auto now = now_ms();
    ev.set_recorded_at_ms(now);
    auto* r = ev.mutable_execution_resumed();
    r->set_by(by);
    r->set_step(info->step);
    r->set_map_index(info->map_index);
    r->set_dead_letter_id(id);
    r->set_resumed_at_ms(now);
    auto seq = s.next_seq();
    auto before = capture_rows(s);
    if (auto ok = s.apply(ev); !ok)
      return res_t::fail(task_errc::not_retryable, "cannot resume "
                                                     + dl.execution_id + ": "
                                                     + ok.error().to_string());
    auto req = make_append(s, seq, {ev}, before, {});
    req.dead_letter_deletes.push_back(id);
    auto res = ctx.writer().append_and_wait(std::move(req));
    if (res) {
      if (auto engine = ctx.engine())
        caf::anon_send(engine, wake_atom::value, dl.execution_id);
      return res_t::ok(dl.execution_id);
    }
    if (res.err().code == eventstore::errc::conflict) continue;
    return store_failure<std::string>(res.err());
  }
  return res_t::fail(task_errc::unavailable, "execution " + dl.execution_id
                                               + " keeps changing; try again");
}

} // namespace cerebelum::actors
