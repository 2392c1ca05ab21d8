#pragma once

#include <memory>

#include "eventstore/event_store.hpp"

namespace cerebelum::eventstore {

/// An `event_store` that forwards every call to an inner store. Decorators
/// (fault injection, retries, metrics) derive from it and override what they
/// change, as Temporal layers its persistence clients.
class store_decorator : public event_store {
 public:
  explicit store_decorator(std::shared_ptr<event_store> inner);

  std::vector<append_result>
  append_batch(std::span<const append_request> reqs) override;

  result<std::size_t> read(std::string_view execution_id, std::int64_t from_seq,
                           const read_callback& fn) override;

  result<std::optional<execution_row>>
  get_execution(std::string_view execution_id) override;

  result<execution_page> list_executions(const list_filter& filter,
                                         std::size_t page_size,
                                         std::string_view page_token) override;

  result<execution_page> open_executions(std::size_t page_size,
                                         std::string_view page_token) override;

  result<std::vector<timer_row>> due_timers(std::int64_t until_ms,
                                            std::size_t limit) override;

  result<std::vector<timer_row>>
  timers_of(std::string_view execution_id) override;

  result<std::vector<task_row>>
  tasks_of(std::string_view execution_id) override;

  result<task_page> all_tasks(std::size_t page_size,
                              std::string_view page_token) override;

  result<dead_letter_page>
  list_dead_letters(std::string_view queue, std::size_t page_size,
                    std::string_view page_token) override;

  result<std::optional<dead_letter_row>>
  get_dead_letter(std::int64_t id) override;

  status put_definitions(std::span<const definition_row> rows) override;

  result<std::optional<definition_row>>
  get_definition(std::string_view name, std::uint64_t version) override;

  result<std::vector<definition_row>> list_definitions(std::string_view name,
                                                       bool documents) override;

  status put_token(const token_row& row) override;
  result<std::optional<token_row>> get_token(std::string_view id) override;
  result<std::vector<token_row>> list_tokens() override;
  result<bool> revoke_token(std::string_view id, std::int64_t at_ms) override;
  status touch_token(std::string_view id, std::int64_t at_ms) override;
  result<std::string> claim_workflow(std::string_view name,
                                     std::string_view owner,
                                     std::int64_t at_ms) override;
  result<std::optional<workflow_owner_row>>
  get_workflow_owner(std::string_view name) override;
  result<workflow_owner_row>
  replace_workflow_owner(std::string_view name, std::string_view owner,
                         std::string_view by, std::int64_t at_ms) override;

  int schema_version() const noexcept override;

 protected:
  /// The decorated store.
  event_store& inner() noexcept {
    return *inner_;
  }

 private:
  std::shared_ptr<event_store> inner_;
};

} // namespace cerebelum::eventstore
