#pragma once

// Shared fixture of the supervision tests: an actor system with the
// supervision types, a scoped actor that children report to, a shared event
// log, a controllable clock, and waits that end on messages (with a time
// limit that only guards against hangs).

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "supervision/supervisor.hpp"

namespace cerebelum::supervision::test {

/// A child reports (started_atom, id, handle) to the observer on start.
using started_atom = caf::atom_constant<caf::atom("started")>;

/// (die_atom, reason) makes a test worker quit with `reason`.
using die_atom = caf::atom_constant<caf::atom("die")>;

/// Longest wait for something the test expects to observe.
constexpr auto guard_timeout = std::chrono::seconds{10};

/// Thread-safe list of events ("start:a", "stop:a") in the order they
/// happened.
class event_log {
 public:
  void add(std::string event);
  std::vector<std::string> events() const;
  size_t count(const std::string& event) const;

 private:
  mutable std::mutex mtx_;
  std::vector<std::string> events_;
};

struct test_config : caf::actor_system_config {
  test_config();
};

/// How a test worker behaves.
struct worker_options {
  /// Trap exit messages and ignore them (a child that hangs on shutdown).
  bool hang_on_shutdown = false;
  /// Report to the observer on start.
  bool notify = true;
};

class fixture {
 public:
  fixture();
  ~fixture();

  /// Spec of a test worker: its start function logs "start:<id>"; the
  /// worker logs "stop:<id>" when an exit message stops it and "exit:<id>"
  /// when it quits on (die_atom, reason).
  child_spec worker(std::string id,
                    restart_type restart = restart_type::permanent,
                    worker_options opts = {});

  /// Template of a simple_one_for_one supervisor: start_child's first
  /// argument (a string) becomes the worker's id.
  child_spec dynamic_worker(restart_type restart, worker_options opts = {});

  /// Spec whose start function fails with sec::runtime_error.
  child_spec failing(std::string id);

  /// Starts a supervisor (blocking); REQUIREs success. The fixture stops it
  /// at the end of the test if it still runs.
  caf::actor start(supervisor_config cfg);

  /// Waits until `id` reported its `nth` start (1-based), returns its handle.
  caf::actor await_start(const std::string& id, size_t nth = 1);

  /// Waits for the down message of `who`, which must be monitored.
  caf::error await_down(const caf::actor& who);

  /// Monitors `who` and returns its exit reason once it terminated.
  caf::error wait_exit(const caf::actor& who);

  /// Lists the children of `sup`; REQUIREs success.
  std::vector<child_info> children(const caf::actor& sup);

  /// Returns the entry of `id` (REQUIREs that it exists).
  child_info child(const caf::actor& sup, const std::string& id);

  /// Whether `sup` lists a child `id`.
  bool has_child(const caf::actor& sup, const std::string& id);

  /// Polls which_children until `pred` holds; REQUIREs it within the guard.
  void
  wait_until(const caf::actor& sup,
             const std::function<bool(const std::vector<child_info>&)>& pred);

  /// Waits until the supervisor no longer runs `old` as child `id`, i.e.
  /// it has processed the exit of `old`.
  void wait_replaced(const caf::actor& sup, const std::string& id,
                     const caf::actor& old);

  /// Advances the injected clock.
  void advance(std::chrono::milliseconds dt);

  /// The injected clock (starts at time_point{} and moves on `advance`).
  clock_function clock();

  test_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  std::shared_ptr<event_log> log;
  std::shared_ptr<std::atomic<int64_t>> now_ms;
  std::map<std::string, std::vector<caf::actor>> starts;
  /// Down messages received so far, by source.
  std::map<caf::actor_addr, caf::error> downs;
  /// Supervisors started by `start`, stopped by the destructor.
  std::vector<caf::actor> supervisors;
};

/// Flags with the fixture's clock.
supervisor_flags flags(restart_strategy strategy, int intensity,
                       clock_function clock);

} // namespace cerebelum::supervision::test
