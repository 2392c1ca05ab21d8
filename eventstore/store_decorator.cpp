#include "eventstore/store_decorator.hpp"

namespace cerebelum::eventstore {

store_decorator::store_decorator(std::shared_ptr<event_store> inner)
  : inner_(std::move(inner)) {
  // nop
}

std::vector<append_result>
store_decorator::append_batch(std::span<const append_request> reqs) {
  return inner_->append_batch(reqs);
}

result<std::size_t> store_decorator::read(std::string_view execution_id,
                                          std::int64_t from_seq,
                                          const read_callback& fn) {
  return inner_->read(execution_id, from_seq, fn);
}

result<std::optional<execution_row>>
store_decorator::get_execution(std::string_view execution_id) {
  return inner_->get_execution(execution_id);
}

result<execution_page>
store_decorator::list_executions(const list_filter& filter,
                                 std::size_t page_size,
                                 std::string_view page_token) {
  return inner_->list_executions(filter, page_size, page_token);
}

result<execution_page>
store_decorator::open_executions(std::size_t page_size,
                                 std::string_view page_token) {
  return inner_->open_executions(page_size, page_token);
}

result<std::vector<timer_row>>
store_decorator::due_timers(std::int64_t until_ms, std::size_t limit) {
  return inner_->due_timers(until_ms, limit);
}

result<std::vector<timer_row>>
store_decorator::timers_of(std::string_view execution_id) {
  return inner_->timers_of(execution_id);
}

result<std::vector<task_row>>
store_decorator::tasks_of(std::string_view execution_id) {
  return inner_->tasks_of(execution_id);
}

result<task_page> store_decorator::all_tasks(std::size_t page_size,
                                             std::string_view page_token) {
  return inner_->all_tasks(page_size, page_token);
}

result<dead_letter_page> store_decorator::list_dead_letters(
  std::string_view queue, std::size_t page_size, std::string_view page_token) {
  return inner_->list_dead_letters(queue, page_size, page_token);
}

result<std::optional<dead_letter_row>>
store_decorator::get_dead_letter(std::int64_t id) {
  return inner_->get_dead_letter(id);
}

status store_decorator::put_definitions(std::span<const definition_row> rows) {
  return inner_->put_definitions(rows);
}

result<std::optional<definition_row>>
store_decorator::get_definition(std::string_view name, std::uint64_t version) {
  return inner_->get_definition(name, version);
}

result<std::vector<definition_row>>
store_decorator::list_definitions(std::string_view name, bool documents) {
  return inner_->list_definitions(name, documents);
}

status store_decorator::put_token(const token_row& row) {
  return inner_->put_token(row);
}

result<std::optional<token_row>>
store_decorator::get_token(std::string_view id) {
  return inner_->get_token(id);
}

result<std::vector<token_row>> store_decorator::list_tokens() {
  return inner_->list_tokens();
}

result<bool> store_decorator::revoke_token(std::string_view id,
                                           std::int64_t at_ms) {
  return inner_->revoke_token(id, at_ms);
}

status store_decorator::touch_token(std::string_view id, std::int64_t at_ms) {
  return inner_->touch_token(id, at_ms);
}

result<std::string> store_decorator::claim_workflow(std::string_view name,
                                                    std::string_view owner,
                                                    std::int64_t at_ms) {
  return inner_->claim_workflow(name, owner, at_ms);
}

result<std::optional<workflow_owner_row>>
store_decorator::get_workflow_owner(std::string_view name) {
  return inner_->get_workflow_owner(name);
}

result<workflow_owner_row>
store_decorator::replace_workflow_owner(std::string_view name,
                                        std::string_view owner,
                                        std::string_view by,
                                        std::int64_t at_ms) {
  return inner_->replace_workflow_owner(name, owner, by, at_ms);
}

int store_decorator::schema_version() const noexcept {
  return inner_->schema_version();
}

} // namespace cerebelum::eventstore
