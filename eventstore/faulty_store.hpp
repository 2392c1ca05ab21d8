#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "eventstore/store_decorator.hpp"

namespace cerebelum::eventstore {

/// Where an injected fault strikes an `append_batch`.
enum class fault_point : std::uint8_t {
  /// The batch fails before it reaches the store: nothing is written and the
  /// error says so (not possibly committed).
  /// Use case: a connection lost before COMMIT.
  before_commit,
  /// The batch commits in the wrapped store, then every append of it is
  /// reported as failed with `possibly_committed`.
  /// Use case: a connection lost while waiting for the COMMIT reply.
  after_commit,
};

/// One planned fault: strike the `on_call`-th `append_batch` call (1-based,
/// counted over the decorator's lifetime) at `point`.
struct fault_plan {
  std::uint64_t on_call = 1;
  fault_point point = fault_point::before_commit;
};

/// A decorator of `event_store` that injects append failures for tests.
/// Reads pass through unchanged.
class faulty_store final : public store_decorator {
 public:
  explicit faulty_store(std::shared_ptr<event_store> inner,
                        std::vector<fault_plan> plans = {});

  /// Adds a planned fault.
  void plan(fault_plan p);

  /// Number of `append_batch` calls so far.
  std::uint64_t calls() const;

  /// While on, every call (appends and reads) fails as an unreachable
  /// database does: `unavailable`, retryable, nothing written.
  /// Use case: a database stopped for a while.
  void set_outage(bool on);
  /// Calls refused by the outage so far.
  std::uint64_t refused() const;

  /// Every `append_batch` takes this much longer (0: none), as a store whose
  /// commits queue up under load does. Use case: a slow store writer.
  void set_append_delay(std::chrono::milliseconds d);

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

 private:
  std::atomic<std::int64_t> append_delay_ms_{0};
  /// The outage's error when it is on (and counts the refusal).
  std::optional<error> outage(const char* call);

  mutable std::mutex mtx_;
  bool outage_ = false;
  std::uint64_t refused_ = 0;
  std::vector<fault_plan> plans_;
  std::uint64_t calls_ = 0;
};

} // namespace cerebelum::eventstore
