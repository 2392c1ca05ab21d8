#pragma once

// The state of an execution actor, shared by its behaviors (execution.cpp)
// and its append path (execution_append.cpp). Private to actors/.

#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/engine_context.hpp"
#include "actors/history.hpp"
#include "actors/messages.hpp"

namespace cerebelum::actors {

/// Self-message: submit the append in flight again.
using again_atom = caf::atom_constant<caf::atom("again")>;

enum class exec_phase { executing, sleeping, awaiting_approval, terminal };

const char* to_string(exec_phase x);

/// An operator's command waiting to be folded, with the operator to answer.
struct queued_command {
  operator_command_ptr cmd;
  caf::response_promise rp;
};

/// The append in flight and what its commit carries out (the one
/// after-commit path: `after_commit`) or what its failure gives back.
struct in_flight {
  enum class kind {
    /// Inputs, commands and the decider's events.
    decision,
    /// execution_started and the first decision (engine_api::start).
    start,
    /// execution_failed after crashes.
    crash_failure,
    /// execution_failed after the store refused a decision for good (over
    /// its size limit, or malformed): appending it again cannot succeed.
    refusal_failure,
    /// An operator's cancel of an execution whose definition is missing,
    /// built from its index row (execution.cpp, `parked`).
    row_cancel,
    /// An operator's migration to another version: execution_migrated
    /// alone (with the new version's definition row).
    migration,
  };
  kind what = kind::decision;
  /// Outside inputs folded in; re-queued when the append fails.
  std::vector<events::Event> inputs;
  /// Operators' commands folded in (or found to need no event); answered
  /// after the commit.
  std::vector<queued_command> commands;
  /// The decision's commands, carried out after the commit.
  std::vector<workflow::command> decisions;
  /// Task rows written and deleted, told to the task router after the
  /// commit.
  task_changes tasks;
  /// start: its callers (the first one is answered created = true).
  std::vector<caf::response_promise> starts;
  /// A dead-letter retry resumed the (failed) execution.
  bool resumed = false;
  /// migration: the execution folded on the version it moves to, adopted
  /// after the commit.
  std::shared_ptr<loaded_execution> migrated;
  /// start, crash_failure, refusal_failure: the append, submitted again as it
  /// is after a retryable failure.
  std::optional<eventstore::append_request> again;
};

struct execution_data {
  context_ptr ctx;
  std::string id;
  engine_context::definition_ptr def;
  /// Shared with waiters once terminal (sent with `finished_atom`). Null only
  /// while a history that cannot be folded is marked failed after crashes.
  std::shared_ptr<workflow::execution_state> exec;
  /// The index row's update time of the last append.
  std::int64_t updated_at_ms = 0;
  exec_phase phase = exec_phase::executing;
  // The two queues are lists, not deques: they are empty almost always, and
  // libstdc++'s deque allocates ~0.5 KiB even when empty (10,000 resident
  // executions held 10 MB of empty deques).
  /// Inputs not yet appended.
  std::list<events::Event> inbox;
  /// Operators' commands not yet folded.
  std::list<queued_command> commands;
  // Held by pointer, not std::optional: both are empty almost always, and
  // an empty optional holds the whole object (~0.9 KB per resident actor).
  /// The append in flight (one at a time).
  std::unique_ptr<in_flight> flight;
  /// The start handed over by the engine, until its request arrives.
  std::unique_ptr<started_execution> unsent_start;
  /// A native attempt running on the call pool.
  struct running_call {
    std::int64_t timeout_ms = 0;
    /// When a pool thread began running it (engine clock, ms; 0 while it
    /// waits in the pool's queue), set by that thread: its timeout counts
    /// from here, not from the decision that scheduled it nor from its
    /// time in the queue.
    std::shared_ptr<std::atomic<std::int64_t>> began;
  };
  /// Native attempts running on the call pool, by token.
  std::map<std::string, running_call> running;
  /// Messages received from the engine (passivation handshake).
  std::uint32_t wakes_seen = 0;
  bool passivation_asked = false;
  std::uint64_t passivation_generation = 0;
  /// Crashes of this execution's earlier actors and the last reason, as the
  /// engine counted them (its answer to our hello).
  std::int32_t crashes = 0;
  std::string crash_reason;
  /// Waiting out a store outage: retries so far (the backoff's exponent),
  /// and whether this actor counts among the store's waiters (shared with
  /// the functor that stops counting it when the actor goes).
  int store_retries = 0;
  std::shared_ptr<bool> store_waiting = std::make_shared<bool>(false);
  /// An append failed in an outage: the state holds events that were not
  /// committed; it is read from the store again before anything else.
  bool reload_due = false;
  /// Marking the execution failed after crashes waits for the store.
  bool fail_due = false;

  workflow::execution_state& state() {
    return *exec;
  }

  bool appending() const {
    return flight != nullptr;
  }

  void adopt(loaded_execution x) {
    def = std::move(x.def);
    exec = std::move(x.state);
  }
};

using execution_actor = caf::stateful_actor<execution_data>;

// -- behaviors (execution.cpp) -----------------------------------------------

/// The one transition function: records the transition, switches the
/// behavior and, for passive and terminal states, asks the engine to let the
/// actor go.
void transition(execution_actor* self, exec_phase next);

exec_phase phase_of(const workflow::execution_state& s);

/// Carries out a committed decision's calls and timers.
void run_commands(execution_actor* self,
                  const std::vector<workflow::command>& cmds);

// -- the append path (execution_append.cpp) ----------------------------------

/// Folds queued commands and inputs, decides and appends; or, when there is
/// nothing to append, answers what needed no event and settles the phase.
void process(execution_actor* self);

/// Submits the start handed over (its request arrived).
void submit_start(execution_actor* self, caf::response_promise rp);

/// Cancels the execution from its index row for the command `c` (its
/// definition is missing: the history cannot be folded); quits after.
void cancel_unloadable(execution_actor* self, queued_command c);

/// Marks the execution failed after `crashes` crashes (the last `reason`).
void fail_after_crashes(execution_actor* self, int crashes,
                        const std::string& reason);

/// The writer answered the append in flight.
void on_appended(execution_actor* self, const append_outcome_ptr& out);

/// After a retryable failure, once its backoff passed: submits the append in
/// flight again, or reads the history again, or marks the execution failed
/// (whichever waited).
void resubmit(execution_actor* self);

/// The store is away (`what` says how): counts this actor among its waiters
/// and arms `again` after a capped exponential backoff.
void wait_for_store(execution_actor* self, const std::string& what);

/// The store answered: the backoff starts afresh and the actor no longer
/// counts as waiting.
void store_answered(execution_actor* self);

/// Answers every command and start still waiting with `err` (the actor
/// stops).
void abandon_requests(execution_actor* self, const caf::error& err);

} // namespace cerebelum::actors
