#pragma once

// What every actor of one node's engine shares: the store and its writer,
// the loaded definitions, the native functions, the pool that runs them,
// the handles of the long-lived actors. (Crash records of executions are kept
// by the engine actor, which sees their actors' down messages.)

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/call_pool.hpp"
#include "actors/clock.hpp"
#include "actors/event_feed.hpp"
#include "actors/function_registry.hpp"
#include "actors/metrics.hpp"
#include "actors/payload_limit.hpp"
#include "actors/store_health.hpp"
#include "eventstore/event_store.hpp"
#include "eventstore/group_writer.hpp"
#include "workflow/decider.hpp"
#include "workflow/definition.hpp"
#include "workflow/execution_state.hpp"
#include "workflow/stored_definition.hpp"

namespace cerebelum::actors {

/// Tunables of the engine.
struct engine_options {
  /// How long a sleeping or waiting execution keeps its actor; 0 = quits at
  /// once.
  std::chrono::milliseconds passivation_delay{0};
  /// Crashes of one execution's actor before it is marked failed.
  int restart_budget = 3;
  /// The scheduler keeps timers up to this far ahead in memory.
  std::chrono::milliseconds timer_horizon{30'000};
  /// The scheduler wakes an execution this long before its timer is due
  /// (its actor is respawned and loaded ahead), and an execution whose next
  /// timer is this close does not passivate: the firing then costs a
  /// message, not a respawn.
  std::chrono::milliseconds timer_prewarm{1'000};
  /// The engine's time (see actors/clock.hpp); null: `real_clock()`.
  clock_ptr clock;
  /// Largest input, approval data and native result or error, in bytes of
  /// JSON text (`--max-payload-bytes`, actors/payload_limit.hpp).
  std::size_t max_payload_bytes = max_payload_bytes_limit;
  /// What the store refuses (tests lower it to reach the engine's last
  /// line of defence: an append refused for good fails the execution).
  eventstore::store_limits store_limits;
  /// What decisions do with attempts the engine lost (`--max-reoffers`).
  workflow::reoffer_policy reoffers;
  /// The store writer's queue bounds.
  eventstore::writer_options writer;
  /// Admission control: a start is refused (`overloaded`, HTTP 429) while
  /// the store writer's queue is fuller than this fraction of its bound,
  /// instead of being accepted into a queue the engine cannot drain in
  /// time. 1 or more: never refused.
  double admission_fill = 0.5;
  /// Admission control by time: a start is refused the same way while the
  /// store writer's oldest unacknowledged append has waited longer than
  /// this (accepted work would join that wait, its steps' timeouts
  /// running). 0: never refused for it.
  std::chrono::milliseconds admission_wait{1'000};
  /// Test hook: called before each decision of an execution actor; throwing
  /// from it crashes the actor (a bug outside a native step).
  std::function<void(const std::string& execution_id)> before_decide;
};

/// An execution folded and decided by `engine_api::start`, handed to its
/// first actor, which appends it (the only writer of an execution's history)
/// and then carries out its commands without reading back what it wrote.
struct started_execution {
  std::shared_ptr<const workflow::definition> def;
  std::unique_ptr<workflow::execution_state> state;
  /// The commands of the first decision (carried out after its commit).
  std::vector<workflow::command> commands;
  /// execution_started + the first decision, at seq 0 (not yet committed).
  eventstore::append_request append;
};

/// The shared context of one node's engine.
class engine_context {
 public:
  using definition_ptr = std::shared_ptr<const workflow::definition>;

  engine_context(std::shared_ptr<function_registry> functions,
                 engine_options opts, std::size_t call_threads);

  /// Attaches the opened store and starts its group writer (done by the
  /// store_writer child, after the data directory is locked). Idempotent.
  void attach_store(std::shared_ptr<eventstore::event_store> store);

  /// Whether a store is attached.
  bool has_store() const;

  ~engine_context();

  eventstore::event_store& store() {
    return *store_;
  }
  eventstore::group_writer& writer() {
    return *writer_;
  }
  function_registry& functions() {
    return *functions_;
  }
  call_pool& calls() {
    return calls_;
  }
  const engine_options& options() const {
    return opts_;
  }
  /// The engine's time: every read of "now" and every delayed message of
  /// the engine's actors goes through it.
  actors::clock& clock() const {
    return *opts_.clock;
  }
  /// `clock().now_ms()`: milliseconds since the epoch (the decision clock).
  std::int64_t now_ms() const {
    return opts_.clock->now_ms();
  }
  /// Whether the store answers, as the engine's calls find it (see
  /// actors/store_health.hpp).
  store_health& health() const {
    return *health_;
  }
  /// The node's Prometheus metrics (actors/metrics.hpp).
  node_metrics& metrics() const {
    return *metrics_;
  }
  /// Every metric in the Prometheus text format, the store's availability
  /// read now.
  std::string metrics_text() const;
  /// Who follows which execution's events live (told of every commit).
  event_feed& feed() const {
    return *feed_;
  }

  /// Stops the call pool and drains and closes the writer. Idempotent and
  /// thread-safe: a concurrent caller returns once the first one finished.
  void close();

  // -- definitions -----------------------------------------------------------
  //
  // A definition from `--workflows` or the embedded list is held for the
  // node's lifetime. One a worker registers is held by that worker's
  // registration: registering again replaces the set a worker holds, and
  // unregistering (or losing the worker) drops it. A version no
  // registration holds any more is released (memory returned to the OS)
  // unless an execution may still need it: one started on it, loaded with
  // it or woken for it since the node started, or open on it when the node
  // started (the resurrector reports those; nothing is released before it
  // is done). Such a version stays until the node restarts; an execution
  // that needs a released version later reads it back from the store (see
  // `find_or_load`), or is parked when the store does not have it either.
  //
  // A workflow name belongs to the source that first defined it: the node's
  // workflow files and embedded list (the operator), or the identity
  // (token) of the first worker that registered it. Only its owner adds
  // versions that become the latest; another worker may hold a version
  // that is loaded already (the same definition as the owner's, e.g. a
  // second worker process of one deployment) but brings nothing new, unless
  // its principal may replace owners (the admin role): it then becomes the
  // owner. A token identity's names are recorded in the store
  // (workflow_owners), so they stay its own across restarts and on every
  // node of the store; every change of hands (an admin's registration, the
  // node's files taking a worker identity's name, a transfer) is recorded
  // there (previous owner, by whom, when) and logged. On a node without
  // tokens worker ids prove nothing and ownership is only kept while the
  // node runs.

  /// Adds `def` from a file or the embedded list (source: where it came
  /// from), held for the node's lifetime; the latest added version of a
  /// name is what `start` uses, and the name belongs to the operator from
  /// now on (a name the store records for a worker identity is recorded as
  /// replaced by `eventstore::files_owner`). Wakes (through the engine)
  /// every execution parked for this name and version.
  void add_definition(workflow::definition def, std::string source);
  /// Makes `defs` the definitions worker `worker` holds (added like
  /// `add_definition`), then releases what no one needs any more. A name
  /// a worker defines first belongs to its `identity` (the authenticated
  /// principal; "" on a node without tokens: all workers, since their ids
  /// prove nothing), whichever worker id of it comes later, also after a
  /// restart under a new id. Changes nothing and answers why when one of
  /// `defs` is named like a workflow another source owns (the node's files,
  /// or another identity) and is not a version loaded already, unless
  /// `may_replace` (the principal's role allows replacing owners): the
  /// names of other identities then become `identity`'s, each replacement
  /// recorded in the store and logged (the node's files stay the
  /// operator's). The stored owners are read first and nothing is recorded
  /// for a refused registration; only a claim that another node records
  /// between this node's read and its own claim refuses after the names
  /// before it were recorded.
  [[nodiscard]] std::optional<std::string>
  register_definitions(const std::string& worker, const std::string& identity,
                       std::vector<workflow::definition> defs,
                       bool may_replace = false);
  /// Who owns workflow name `name` on this node and what the store records
  /// for it.
  struct owner_record {
    /// The owner here: `eventstore::files_owner`, a worker identity or
    /// `any_worker`.
    std::string owner;
    /// The store's row, when it has one.
    std::optional<eventstore::workflow_owner_row> stored;
  };
  /// The owner of `name`. Errors: unknown_workflow (no one defined it),
  /// unavailable (the store cannot be read).
  caf::expected<owner_record> owner_of(const std::string& name);
  /// Makes `to` (a worker identity, "token 'NAME'") the owner of `name`,
  /// recorded in the store as a replacement by `by` and logged. Errors:
  /// unknown_workflow, not_transferable (this node's workflow files define
  /// it), unavailable (no store, or it cannot be written).
  caf::expected<owner_record> transfer_owner(const std::string& name,
                                             const std::string& to,
                                             const std::string& by);
  /// Who owns workflow name `name`: "" for the node's workflow files and
  /// embedded list, `any_worker` for workers on a node without tokens,
  /// else a worker identity; nothing when no one defined it.
  std::optional<std::string> owner(const std::string& name) const;
  /// The owner of names that workers of a node without tokens define.
  static constexpr const char* any_worker = "workers";
  /// Worker `worker` is gone: releases what no one needs any more.
  void unregister_definitions(const std::string& worker);
  /// The resurrector found an open execution of `name` version `version`:
  /// that version is never released while this node runs.
  void note_open_execution(const std::string& name, std::uint64_t version);
  /// The latest definition named `name` (marks it needed).
  definition_ptr latest(const std::string& name) const;
  /// The definition `name` with version hash `version` (marks it needed).
  definition_ptr find(const std::string& name, std::uint64_t version) const;
  /// (name, version hash, source) of every definition.
  std::vector<std::tuple<std::string, std::uint64_t, std::string>>
  definitions() const;

  // -- definitions in the store ----------------------------------------------
  //
  // Every definition an execution starts on is stored (content-addressed by
  // its version, written with that execution's first append), so that an
  // execution resumes on its own version whatever the files or the workers
  // say after a restart.

  /// `find`, else the stored definition `name` version `version`, read from
  /// the store, checked (its document hashes to its version) and held for
  /// the node's life (it does not become the latest unless no version of
  /// that name is loaded). Null when neither has it; errors: the store's
  /// (a damaged document is `corrupt_event`).
  eventstore::result<definition_ptr> find_or_load(const std::string& name,
                                                  std::uint64_t version);
  /// `latest`, else the most recently stored version of `name` (loaded as
  /// `find_or_load` does). Null when neither has one.
  eventstore::result<definition_ptr> latest_or_stored(const std::string& name);
  /// The row that stores `def` with the first append of an execution that
  /// runs on it, or nothing when it is known to be stored already.
  std::optional<eventstore::definition_row>
  row_to_store(const workflow::definition& def, std::int64_t now_ms) const;
  /// `name` version `version` is committed in the store.
  void note_stored(const std::string& name, std::uint64_t version);
  /// The version hash of the latest loaded definition of `name`.
  std::optional<std::uint64_t> latest_version(const std::string& name) const;
  /// Whether `name` version `version` is loaded (in memory).
  bool has(const std::string& name, std::uint64_t version) const;
  /// Whether the history of `id` was found damaged since the node started.
  bool is_damaged(const std::string& id) const;
  /// Whether `name` version `version` was loaded from a file, the embedded
  /// list or a worker (not only read back from the store).
  bool loaded(const std::string& name, std::uint64_t version) const;

  // -- parked executions -----------------------------------------------------

  enum class park_result {
    /// Parked; the first time for this execution (log it).
    parked_first,
    /// Parked again (already known to wait for this definition).
    parked_again,
    /// The definition is known by now: load again instead.
    now_known,
  };
  /// Parks `id`, whose workflow `name` version `version` is not loaded: the
  /// next `add_definition` of that version wakes it. Atomic with
  /// `add_definition` (a registration cannot slip between the failed load and
  /// the parking).
  park_result park(const std::string& id, const std::string& name,
                   std::uint64_t version);
  /// Whether `id` was woken from parking since its last call (once): its
  /// actor then fires the timers that came due while it was parked itself
  /// (the scheduler does not fire a key twice within its horizon).
  bool take_unparked(const std::string& id);

  // -- long-lived actors -----------------------------------------------------

  void set_registry(caf::actor x);
  void set_scheduler(caf::actor x);
  void set_executions_sup(caf::actor x);
  /// The actor that holds every wait (local_engine.hpp, spawn_wait_hub).
  void set_wait_hub(caf::actor x);
  caf::actor wait_hub() const;
  /// The task router (remote `task` steps); null when the node has none.
  /// (Untyped here: the router's typed interface, task_api.hpp, includes
  /// messages.hpp, which includes this header.)
  void set_task_router(caf::actor x);
  caf::actor task_router() const;
  caf::actor registry() const;
  caf::actor scheduler() const;
  caf::actor executions_sup() const;

  // -- start handoff ---------------------------------------------------------

  /// Leaves the uncommitted first state of `id` for its first actor (the
  /// engine does, right before it spawns that actor).
  void hand_over(const std::string& id, started_execution x);
  /// Takes what `hand_over` left for `id`, if anything (a restarted actor
  /// finds nothing and folds the history from the store).
  std::optional<started_execution> take_over(const std::string& id);
  /// Drops what was left for `id` (its actor could not be spawned).
  void drop_handover(const std::string& id);

  // -- boot ------------------------------------------------------------------

  /// Called by the resurrector when it has paged every open execution.
  void note_resurrection_done(std::chrono::milliseconds took);
  /// How long resurrection took, once done.
  std::optional<std::chrono::milliseconds> resurrection_time() const;

  // -- store damage ----------------------------------------------------------

  /// Records that the history of `id` cannot be read back because the store
  /// is damaged (its actor sets it aside: not resumed, not marked failed).
  /// Returns true the first time, when the caller reports it.
  bool note_damaged(const std::string& id);
  /// How many executions were set aside as damaged since the node started,
  /// and the first `max` of them.
  std::pair<std::size_t, std::vector<std::string>>
  damaged(std::size_t max) const;

  /// Stops the node for a fault it cannot run with (its store's index is
  /// damaged): passes `reason` to the function set with `on_fatal`, or keeps
  /// it for that function if none is set yet. The first reason wins.
  void fatal(caf::error reason);
  /// Sets what `fatal` calls. Returns the reason of a `fatal` raised before
  /// (the node then does not start), or none.
  caf::error on_fatal(std::function<void(const caf::error&)> fn);

 private:
  std::shared_ptr<eventstore::event_store> store_;
  std::unique_ptr<eventstore::group_writer> writer_;
  std::shared_ptr<function_registry> functions_;
  engine_options opts_;
  std::unique_ptr<store_health> health_;
  std::shared_ptr<node_metrics> metrics_;
  std::shared_ptr<event_feed> feed_;
  call_pool calls_;
  mutable std::mutex mtx_;
  /// Serializes `close` (the store writer's exit and `node::stop` may race).
  std::mutex close_mtx_;
  bool closed_ = false;
  /// One version of a definition and who holds it.
  struct def_entry {
    definition_ptr def;
    std::string source;
    /// Order of the last add: the latest remaining version is `latest`.
    std::uint64_t added = 0;
    /// From a file or embedded: never released.
    bool permanent = false;
    /// Workers whose registration holds it.
    std::set<std::string> workers;
    /// Only read back from the store (not from a file, a worker or the
    /// embedded list).
    bool stored_only = false;
  };
  using version_key = std::pair<std::string, std::uint64_t>;
  /// Adds under `mtx_`; returns the ids of executions parked on it.
  std::vector<std::string>
  add_locked(workflow::definition def, std::string source, bool permanent,
             const std::string& worker, bool from_store = false,
             bool owned = true);
  /// Checks and adds the stored `row` (see `find_or_load`).
  eventstore::result<definition_ptr>
  add_stored(const eventstore::definition_row& row);
  /// Drops, under `mtx_`, worker `worker` from the holders of every version
  /// not in `keep`; returns whether it held any.
  bool drop_holder_locked(const std::string& worker,
                          const std::set<version_key>& keep);
  /// Releases, under `mtx_`, every version no one needs; moves them into
  /// `out` so that they are destroyed outside the lock.
  void sweep_locked(std::vector<definition_ptr>& out);
  /// Sends `wake` for `ids` and drops `released` (returning memory).
  void after_change(const std::string& what, std::vector<std::string> ids,
                    std::vector<definition_ptr> released);
  std::map<std::string, std::map<std::uint64_t, def_entry>> defs_;
  std::map<std::string, definition_ptr> latest_;
  /// Workflow name -> who defined it first: "" the operator (files,
  /// embedded list), else a worker identity. Read back definitions own
  /// nothing.
  std::map<std::string, std::string> owners_;
  /// Names whose owner could not be recorded in the store (it was away):
  /// recorded at their owner's next registration.
  std::set<std::string> unclaimed_;

  /// `attach_store` under `mtx_`.
  void attach_locked(std::shared_ptr<eventstore::event_store> store);
  /// The node's files define `name`: when the store records a worker
  /// identity as its owner, records the files as its owner (a replacement
  /// by `eventstore::files_owner`) and logs it. Under `owners_mtx_`.
  void record_files_owner(const std::string& name);
  /// Serialises the changes of owners on this node (registrations, the
  /// files, transfers), which read and write the store between their
  /// checks and their changes in memory; taken before `mtx_`.
  std::mutex owners_mtx_;
  /// Before the check of `register_definitions` by a token's identity:
  /// learns the stored owner of each name of `defs` (from an earlier run,
  /// another node or a transfer) without recording anything. The node's
  /// own files keep theirs.
  void learn_owners(const std::vector<workflow::definition>& defs);
  /// After the check: records `identity` as the owner of `claim` (names
  /// no one owned) and replaces the owner of `replace` (when
  /// `may_replace`). Why the registration is refused, if another node's
  /// claim won meanwhile or a replacement could not be recorded.
  std::optional<std::string>
  record_owners(const std::string& worker, const std::string& identity,
                bool may_replace, std::vector<std::string> claim,
                std::vector<std::string> replace);
  /// Versions an execution may need (see above); only ever grows.
  mutable std::set<version_key> needed_;
  /// Versions known to be committed in the store.
  std::set<version_key> stored_;
  std::uint64_t add_seq_ = 0;
  /// Parked executions by (workflow name, version hash).
  std::map<std::pair<std::string, std::uint64_t>, std::vector<std::string>>
    parked_;
  std::unordered_set<std::string> unparked_;
  caf::actor registry_;
  caf::actor wait_hub_;
  caf::actor scheduler_;
  caf::actor executions_sup_;
  caf::actor task_router_;
  std::mutex handover_mtx_;
  std::unordered_map<std::string, started_execution> handovers_;
  std::optional<std::chrono::milliseconds> resurrection_time_;
  std::unordered_set<std::string> damaged_;
  /// The first damaged executions, in the order they were found.
  std::vector<std::string> damaged_first_;
  std::function<void(const caf::error&)> on_fatal_;
  caf::error fatal_;
};

using context_ptr = std::shared_ptr<engine_context>;

/// Maps the decider's status to the index's.
eventstore::execution_status to_store_status(workflow::execution_status st);

} // namespace cerebelum::actors
