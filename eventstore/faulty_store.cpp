#include "eventstore/faulty_store.hpp"

#include <optional>
#include <string>
#include <thread>

namespace cerebelum::eventstore {

faulty_store::faulty_store(std::shared_ptr<event_store> inner,
                           std::vector<fault_plan> plans)
  : store_decorator(std::move(inner)), plans_(std::move(plans)) {
  // nop
}

void faulty_store::plan(fault_plan p) {
  std::lock_guard guard{mtx_};
  plans_.push_back(p);
}

std::uint64_t faulty_store::calls() const {
  std::lock_guard guard{mtx_};
  return calls_;
}

void faulty_store::set_outage(bool on) {
  std::lock_guard guard{mtx_};
  outage_ = on;
}

std::uint64_t faulty_store::refused() const {
  std::lock_guard guard{mtx_};
  return refused_;
}

std::optional<error> faulty_store::outage(const char* call) {
  std::lock_guard guard{mtx_};
  if (!outage_) return std::nullopt;
  ++refused_;
  return make_error(errc::unavailable,
                    std::string{"database unreachable (injected outage) in "}
                      + call,
                    true, false);
}

result<std::size_t> faulty_store::read(std::string_view execution_id,
                                       std::int64_t from_seq,
                                       const read_callback& fn) {
  if (auto err = outage("read")) return std::move(*err);
  return store_decorator::read(execution_id, from_seq, fn);
}

result<std::optional<execution_row>>
faulty_store::get_execution(std::string_view execution_id) {
  if (auto err = outage("get_execution")) return std::move(*err);
  return store_decorator::get_execution(execution_id);
}

result<execution_page>
faulty_store::list_executions(const list_filter& filter, std::size_t page_size,
                              std::string_view page_token) {
  if (auto err = outage("list_executions")) return std::move(*err);
  return store_decorator::list_executions(filter, page_size, page_token);
}

result<execution_page>
faulty_store::open_executions(std::size_t page_size,
                              std::string_view page_token) {
  if (auto err = outage("open_executions")) return std::move(*err);
  return store_decorator::open_executions(page_size, page_token);
}

result<std::vector<timer_row>> faulty_store::due_timers(std::int64_t until_ms,
                                                        std::size_t limit) {
  if (auto err = outage("due_timers")) return std::move(*err);
  return store_decorator::due_timers(until_ms, limit);
}

result<std::vector<timer_row>>
faulty_store::timers_of(std::string_view execution_id) {
  if (auto err = outage("timers_of")) return std::move(*err);
  return store_decorator::timers_of(execution_id);
}

result<std::vector<task_row>>
faulty_store::tasks_of(std::string_view execution_id) {
  if (auto err = outage("tasks_of")) return std::move(*err);
  return store_decorator::tasks_of(execution_id);
}

result<task_page> faulty_store::all_tasks(std::size_t page_size,
                                          std::string_view page_token) {
  if (auto err = outage("all_tasks")) return std::move(*err);
  return store_decorator::all_tasks(page_size, page_token);
}

result<dead_letter_page>
faulty_store::list_dead_letters(std::string_view queue, std::size_t page_size,
                                std::string_view page_token) {
  if (auto err = outage("list_dead_letters")) return std::move(*err);
  return store_decorator::list_dead_letters(queue, page_size, page_token);
}

result<std::optional<dead_letter_row>>
faulty_store::get_dead_letter(std::int64_t id) {
  if (auto err = outage("get_dead_letter")) return std::move(*err);
  return store_decorator::get_dead_letter(id);
}

void faulty_store::set_append_delay(std::chrono::milliseconds d) {
  append_delay_ms_ = d.count();
}

std::vector<append_result>
faulty_store::append_batch(std::span<const append_request> reqs) {
  if (auto d = append_delay_ms_.load(); d > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds{d});
  if (auto err = outage("append_batch"))
    return std::vector<append_result>(reqs.size(), append_result{*err});
  std::optional<fault_point> strike;
  std::uint64_t call = 0;
  {
    std::lock_guard guard{mtx_};
    call = ++calls_;
    for (const auto& p : plans_)
      if (p.on_call == call) strike = p.point;
  }
  if (!strike) return inner().append_batch(reqs);
  auto where = " (injected on append_batch call " + std::to_string(call) + ")";
  if (*strike == fault_point::before_commit)
    return std::vector<append_result>(
      reqs.size(), append_result{make_error(
                     errc::injected_fault,
                     "connection lost before commit" + where, true, false)});
  auto results = inner().append_batch(reqs);
  for (auto& r : results)
    if (r.ok())
      r = append_result{make_error(errc::injected_fault,
                                   "connection lost during commit" + where,
                                   true, true)};
  return results;
}

} // namespace cerebelum::eventstore
