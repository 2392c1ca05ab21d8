#include "actors/dead_letters.hpp"

#include <caf/scoped_actor.hpp>

#include "actors/errc.hpp"
#include "actors/messages.hpp"
#include "actors/operator_commands.hpp"
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
                                           const operator_id& who) {
  using res_t = task_result<std::string>;
  if (who.by.empty())
    return res_t::fail(task_errc::invalid_argument,
                       "name the operator who retries (by)");
  for (const auto* text : {&who.by, &who.note})
    if (auto bad = workflow::check_text("by", *text, workflow::max_name_bytes,
                                        workflow::text_rule::label))
      return res_t::fail(task_errc::invalid_argument, std::move(*bad));
  auto row = ctx.store().get_dead_letter(id);
  if (!row) return store_failure<std::string>(row.err());
  if (!*row)
    return res_t::fail(task_errc::not_found,
                       "no dead letter with id " + std::to_string(id));
  const auto& dl = **row;
  // The execution's actor (the only writer of its history) checks that the
  // execution is still failed by this task, appends execution_resumed with
  // the dead letter's deletion and answers after the commit.
  auto engine = ctx.registry();
  if (!engine)
    return res_t::fail(task_errc::unavailable, "the node is stopping");
  caf::scoped_actor self{engine.home_system()};
  std::optional<task_error> failed;
  self
    ->request(engine, std::chrono::seconds{60}, command_atom::value,
              dl.execution_id, make_dead_letter_retry(who, id, dl.task_id))
    .receive([](ok_atom) {},
             [&](caf::error& err) {
               auto code = api_error_code(err);
               failed = task_error{
                 code == errc::not_retryable || code == errc::not_found
                     || code == errc::already_terminal
                   ? task_errc::not_retryable
                   : task_errc::unavailable,
                 err.category() == error_category
                   ? api_error_message(err)
                   : "execution " + dl.execution_id
                       + " could not take the retry (" + caf::to_string(err)
                       + "); try again"};
             });
  if (failed) return res_t::fail(failed->code, std::move(failed->message));
  return res_t::ok(dl.execution_id);
}

} // namespace cerebelum::actors
