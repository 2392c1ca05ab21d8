#pragma once

// An in-process node on a temporary data directory with native test
// functions and the test workflows of workflows.cpp.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>
#include <catch2/catch.hpp>

#include "actors/clock.hpp"
#include "actors/engine_api.hpp"
#include "actors/node.hpp"
#include "actors/task_api.hpp"

namespace cerebelum::actors::test {

/// How long a test waits for an execution to reach a state.
constexpr auto wait_time = std::chrono::seconds{20};

/// Writes the test workflows into `dir`: timeline, fanout, sleeper (sleeps
/// input.i ms first), gated, napper (a call, then a sleep of input.i ms),
/// slow_retry (t.flaky with a 5 s backoff, doubling).
void write_workflows(const std::filesystem::path& dir);

/// Registers t.inc (n+1), t.double (n*2), t.add3 (n+3), t.flaky (fails
/// retryably while `flaky_failures` > 0).
std::shared_ptr<function_registry> test_functions();

/// Failures t.flaky still returns.
extern std::atomic<int> flaky_failures;

/// The connection string of the PostgreSQL test server, or "".
std::string pg_conninfo();

/// How many events of kind `which` the history of `id` holds (REQUIREs
/// that the history can be read).
int count_of(engine_api& api, const std::string& id,
             events::Event::PayloadCase which);

/// Calls `call` (a task API call) with a callback and waits (bounded) for
/// its result.
template <class T, class Call>
task_result<T> sync(Call call) {
  auto p = std::make_shared<std::promise<task_result<T>>>();
  auto fut = p->get_future();
  call([p](task_result<T> r) {
    p->set_value(std::move(r));
  });
  REQUIRE(fut.wait_for(wait_time) == std::future_status::ready);
  return fut.get();
}

class engine_fixture {
 public:
  /// `store`: "" (SQLite) or a PostgreSQL connection string.
  explicit engine_fixture(std::string store = {});
  ~engine_fixture();

  /// Starts the node (again) on the same data directory.
  void start();
  /// Stops the node gracefully.
  void stop();

  engine_api& api() {
    return *node_->api();
  }
  actors::node& node() {
    return *node_;
  }
  node_config& config() {
    return cfg_;
  }
  const std::filesystem::path& data_dir() const {
    return dir_;
  }

  /// Puts the node on a manual clock (call before `start`; it stays across
  /// restarts of the node) and returns it.
  actors::manual_clock& manual_time();
  /// `manual_time()`, then `start()`: a node started on a manual clock.
  actors::manual_clock& start_on_manual_clock();
  caf::actor_system& system();

  /// Whether `id` has a live actor right now.
  bool is_live(const std::string& id);

  /// Waits (bounded) until `id` has no live actor; false on timeout.
  bool wait_passivated(const std::string& id);

  /// Waits (bounded) until `id` shows status `st`; false on timeout.
  bool wait_status(const std::string& id, eventstore::execution_status st);

  /// How many `wait` calls the engine holds for `id`.
  std::uint64_t waiters(const std::string& id);

  /// The scheduler's (timers in memory, timers fired so far).
  std::pair<std::uint64_t, std::uint64_t> scheduler_stats();

  /// Registers worker `worker` (one slot) for `queue` with the node's task
  /// router; the test fails if the router refuses it.
  void register_worker(const std::string& worker, const std::string& queue);

  /// Starts `workflow` with input {"i": i} and the given id.
  execution_view start(const std::string& workflow, int i,
                       const std::string& id = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::shared_ptr<actors::manual_clock> clock_;
  std::filesystem::path dir_;
  node_config cfg_;
  std::optional<actors::node> node_;
};

} // namespace cerebelum::actors::test
