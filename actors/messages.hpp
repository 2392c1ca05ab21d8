#pragma once

// Atoms and message types exchanged by the engine's actors. Every message of
// the engine travels inside one node: complex payloads are passed as
// `std::shared_ptr`s allowed as unsafe (local-only) message types.

#include <memory>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <nlohmann/json.hpp>

#include "actors/engine_context.hpp"
#include "actors/operator_id.hpp"
#include "eventstore/event_store.hpp"
#include "proto/events.pb.h"
#include "workflow/execution_state.hpp"

namespace cerebelum::actors {

/// Asks the engine to deliver new history to an execution (spawning it when
/// passivated); forwarded by the engine to the execution.
using wake_atom = caf::atom_constant<caf::atom("wake")>;
/// Request (id, started_execution_ptr) -> bool created, from
/// engine_api::start to the engine: when `id` has no live actor the engine
/// hands the uncommitted first decision over and spawns one; either way it
/// delegates `(start)` to the execution's actor, which appends the start
/// and answers after the commit (false: the id exists).
using start_atom = caf::atom_constant<caf::atom("start")>;
/// Request (id, operator_command_ptr) -> ok, to the engine, delegated to the
/// execution's actor as (command, operator_command_ptr): approve, reject,
/// cancel, a dead-letter retry or a migration, answered after the commit.
using command_atom = caf::atom_constant<caf::atom("command")>;
using ok_atom = caf::atom_constant<caf::atom("ok")>;
/// A timer is due: (execution id, timer id).
using timer_atom = caf::atom_constant<caf::atom("timer")>;
/// The outcome of a native step attempt: an event to append.
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
/// The writer's answer to an append.
using appended_atom = caf::atom_constant<caf::atom("appended")>;
/// An execution asks to passivate; the engine answers with `passok_atom`.
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using passok_atom = caf::atom_constant<caf::atom("passok")>;
/// An execution reached a terminal status: (id) or (id, final_state_ptr),
/// forwarded by the engine to the waiters.
using finished_atom = caf::atom_constant<caf::atom("finished")>;
/// An execution that had finished was resumed (a dead-letter retry): (id).
using resumed_atom = caf::atom_constant<caf::atom("resumed")>;
/// Subscribes / unsubscribes an actor to the end of an execution.
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using unsub_atom = caf::atom_constant<caf::atom("unsub")>;
/// (caf::error reason): the engine exits (stopping, or crashed and being
/// restarted by its supervisor); sent to every subscribed waiter, which
/// then watches through its successor or, when the node stops, ends. Waiters
/// do not monitor the engine: CAF 0.17 walks the monitored actor's whole
/// list of monitors on each demonitor, so 10,000 waits each monitoring it
/// cost quadratic time (29% of a 10,000-waiter run's CPU).
using gone_atom = caf::atom_constant<caf::atom("gone")>;
/// Request (id, waiter) -> (watch_reply, final_state_ptr): subscribes like
/// `subscribe_atom` and says what the engine knows of the execution.
using watch_atom = caf::atom_constant<caf::atom("watch")>;

/// The engine's answer to `watch_atom`.
enum class watch_reply : std::int32_t {
  /// Live and not finished: `finished_atom` will come.
  watching = 0,
  /// Not live (passivated, finished long ago or unknown): the store knows;
  /// the waiter is subscribed in case it finishes later.
  unknown = 1,
  /// Finished; the final state comes with the answer when the actor sent it.
  finished = 2,
};
/// Registers a durable timer with the scheduler.
using schedule_atom = caf::atom_constant<caf::atom("schedule")>;
/// Periodic self-message.
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// An execution actor announces itself to the engine: (id, actor).
using hello_atom = caf::atom_constant<caf::atom("hello")>;
/// The engine's answer to an execution actor's hello: (crashes of this
/// execution's actors so far, the last one's reason). The engine counts them
/// from the down messages of the actors it monitors.
using crashes_atom = caf::atom_constant<caf::atom("crashes")>;
/// Asks for the live actor of an execution (tests, statistics).
using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
/// Asks the engine or scheduler for counters.
using stats_atom = caf::atom_constant<caf::atom("stats")>;

/// Execution -> task router, after a commit that changed task rows:
/// (execution id, task_changes_ptr).
using tasks_atom = caf::atom_constant<caf::atom("tasks")>;
/// Execution -> task router: a task outcome (by attempt token) was dropped
/// because the execution no longer waits for that attempt: (id, token).
using refused_atom = caf::atom_constant<caf::atom("refused")>;

/// An operator's command for one execution, recorded by its actor.
struct operator_command {
  enum class kind { approve, reject, cancel, retry_dead_letter, migrate };
  kind what = kind::approve;
  /// Who asked (recorded): the principal, or the name given.
  std::string by{};
  /// Beside a principal, the name the caller typed (recorded as a note).
  std::string note{};
  /// approve: the approval data.
  nlohmann::json data{};
  /// reject, cancel: why.
  std::string reason{};
  /// retry_dead_letter: the dead letter and its task (attempt token).
  std::int64_t dead_letter_id = 0;
  std::string dead_letter_task{};
  /// migrate: the version to move the execution to.
  std::shared_ptr<const workflow::definition> to{};
};

using operator_command_ptr = std::shared_ptr<const operator_command>;

/// engine_api::start's uncommitted first decision (see start_atom).
using started_execution_ptr = std::shared_ptr<started_execution>;

/// The task rows one committed append wrote and deleted.
struct task_changes {
  std::vector<eventstore::task_row> upserts;
  std::vector<std::string> deletes;
};

using task_changes_ptr = std::shared_ptr<const task_changes>;

/// The result of an append, as delivered to the appending actor.
struct append_outcome {
  explicit append_outcome(eventstore::append_result r) : res(std::move(r)) {
    // nop
  }
  eventstore::append_result res;
};

using append_outcome_ptr = std::shared_ptr<const append_outcome>;

/// An event produced outside the execution actor (a native step's result).
using event_ptr = std::shared_ptr<const events::Event>;

/// The committed terminal state of an execution, sent with `finished_atom`
/// so that waiters answer without reading the store. `updated_at_ms` is the
/// index row's update time of the terminal append.
struct final_state {
  std::shared_ptr<const workflow::definition> def;
  std::shared_ptr<const workflow::execution_state> state;
  std::int64_t updated_at_ms = 0;
};

using final_state_ptr = std::shared_ptr<const final_state>;

} // namespace cerebelum::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::append_outcome_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::event_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::task_changes_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::final_state_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::operator_command_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::started_execution_ptr)
