#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/clock.hpp"
#include "actors/engine_api.hpp"
#include "actors/function_registry.hpp"
#include "actors/payload_limit.hpp"
#include "actors/task_api.hpp"
#include "actors/task_router.hpp"
#include "eventstore/sqlite_store.hpp"
#include "supervision/child_spec.hpp"
#include "workflow/decider.hpp"
#include "workflow/definition.hpp"

namespace cerebelum::actors {

class engine_context;

/// What a node needs to start.
struct node_config {
  /// Directory of the embedded store and the node's lock; must exist.
  std::filesystem::path data_dir;
  /// The event store: empty or "sqlite" for the SQLite file in `data_dir`;
  /// "postgresql://..." (or a libpq "host=... dbname=..." string) for
  /// PostgreSQL.
  std::string store;
  /// What the open verifies of an existing SQLite store file (see
  /// `eventstore::sqlite_open_check`); PostgreSQL is not checked at open.
  eventstore::sqlite_open_check store_check
    = eventstore::sqlite_open_check::full;
  /// Test hook: decorates the opened store (fault injection: an outage of
  /// the database as `eventstore::faulty_store` plays it).
  std::function<std::shared_ptr<eventstore::event_store>(
    std::shared_ptr<eventstore::event_store>)>
    wrap_store;
  /// Every *.yaml, *.yml and *.json file in it is loaded; a file that fails
  /// validation makes `start` fail, naming the file. Empty: none.
  std::filesystem::path workflows_dir;
  /// Workflows defined in C++ (builder API), added after those of
  /// `workflows_dir`; a later definition of the same name is the one `start`
  /// uses.
  std::vector<workflow::definition> definitions;
  /// Native functions for `call` steps; empty: none registered.
  std::shared_ptr<function_registry> functions;
  /// How long a sleeping or waiting execution keeps its actor; 0 = it
  /// passivates at once.
  std::chrono::milliseconds passivation_delay{0};
  /// Child specs of the operators' interfaces (gRPC, HTTP), started under
  /// `bridge_sup` (one_for_one) last and stopped first; they receive the
  /// node's engine_api.
  std::function<std::vector<supervision::child_spec>(
    std::shared_ptr<engine_api>, task_api_ptr)>
    bridges;
  /// The task router's options (leases, polls, per-queue sticky routing and
  /// concurrency limits).
  router_options tasks;
  /// Largest start input, approval data and step result or error a node
  /// takes, in bytes of JSON text (`--max-payload-bytes`; at most and by
  /// default `max_payload_bytes_limit`). Overrides `tasks.max_payload_bytes`.
  std::size_t max_payload_bytes = max_payload_bytes_limit;
  /// What the store refuses (events over 1 MiB by default); tests lower it.
  eventstore::store_limits store_limits;
  /// What decisions do with attempts the engine lost: lease expired, worker
  /// lost or gone (`--max-reoffers`; workflow/decider.hpp).
  workflow::reoffer_policy reoffers;
  /// The store writer's queue bounds and the admission threshold (see
  /// engine_options::writer, engine_options::admission_fill). The node's
  /// writer starts each group with what is queued (`max_linger` 0, where
  /// the event store's default waits up to 1 ms for the last group's
  /// callers to come back): execution actors come back at different
  /// moments, and waiting for all of them cost 15 % of the throughput at 64
  /// executions in flight (docs/benchmarks.md, *Engine (in-process)*).
  eventstore::writer_options writer = [] {
    eventstore::writer_options w;
    w.max_linger = std::chrono::microseconds{0};
    return w;
  }();
  double admission_fill = 0.5;
  std::chrono::milliseconds admission_wait{1'000};
  /// Threads running native steps.
  std::size_t call_threads = 4;
  /// Crashes of one execution's actor before the execution is marked
  /// failed (kind "crashed").
  int restart_budget = 3;
  /// Test hook: called by an execution actor before each decision; throwing
  /// from it crashes that actor (a bug outside a native step).
  std::function<void(const std::string& execution_id)> before_decide;
  /// The engine's time: decisions, event stamps, timers, leases, backoff and
  /// passivation read it (actors/clock.hpp). Null: the wall clock. Tests
  /// hand a `manual_clock` and advance it.
  clock_ptr clock;
};

/// Registers every message type a node exchanges (supervision included) in
/// `cfg`. Call it before creating the `caf::actor_system`.
void add_node_message_types(caf::actor_system_config& cfg);

/// A running node: the root of its supervision tree.
///
/// ```
/// node_supervisor (one_for_one)
///  +-- data_dir_lock       permanent   exclusive lock of the data directory
///  +-- store_writer        permanent   store + group writer; drains on stop
///  +-- scheduler           permanent   durable timers: heap + store paging
///  +-- task_router         permanent   open tasks of remote workers, leases
///  +-- executions_sup      permanent   simple_one_for_one of executions
///  +-- execution_registry  permanent   live execution actors, waiters
///  +-- resurrector         transient   boot: respawns running executions
///  +-- bridge_sup          permanent   the interfaces (node_config::bridges)
/// ```
///
/// See docs/engine.md.
class node {
 public:
  /// Called once if the tree terminates on its own (escalation past the
  /// root's restart intensity), with the root's exit reason. Runs on a CAF
  /// thread: keep it short (e.g. wake the main thread).
  using on_down_function = std::function<void(const caf::error& reason)>;

  /// Starts the supervision tree and blocks until every child is up. Never
  /// call it inside an actor.
  static caf::expected<node> start(caf::actor_system& sys,
                                   const node_config& cfg,
                                   on_down_function on_down = {});

  /// Stops the tree gracefully: children in reverse start order, each by its
  /// shutdown policy. Returns false if the root did not terminate within
  /// `timeout`.
  bool stop(std::chrono::milliseconds timeout);

  /// The root supervisor.
  const caf::actor& root() const {
    return root_;
  }

  /// The operations of this node (thread-safe, blocking).
  std::shared_ptr<engine_api> api() const {
    return api_;
  }

  /// The execution registry (tests: `lookup_atom` gives an execution's live
  /// actor; `stats_atom` the number of live executions).
  caf::actor registry() const;

  /// The scheduler actor (`stats_atom`: timers in memory, timers fired).
  caf::actor scheduler() const;

  /// The task facade for worker front ends.
  task_api_ptr tasks() const {
    return tasks_;
  }

  /// The task router actor (`stats_atom`: open tasks, ready, leased total).
  task_router_actor task_router() const;

  /// How long the resurrector took, once it finished.
  std::optional<std::chrono::milliseconds> resurrection_time() const;

 private:
  node(caf::actor_system& sys, caf::actor root, caf::actor watcher,
       std::shared_ptr<std::atomic<bool>> stopping);

  caf::actor_system* sys_;
  caf::actor root_;
  /// Monitors the root; reports a termination that `stop` did not cause.
  caf::actor watcher_;
  /// Set by `stop` so that the watcher stays quiet about the exit.
  std::shared_ptr<std::atomic<bool>> stopping_;
  std::shared_ptr<engine_api> api_;
  std::shared_ptr<engine_context> ctx_;
  task_api_ptr tasks_;
};

} // namespace cerebelum::actors
