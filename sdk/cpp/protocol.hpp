#pragma once

// The wire protocol between a node's worker gateway and C++ workers that
// join it over CAF networking (caf::io). Every type below crosses the network
// between two processes: each has an `inspect` overload and a type id in the
// `cerebelum_worker` block, and both sides call `add_protocol_types` before
// creating their actor system (an unregistered type fails remote sends).
//
// ```
//  worker                                         node (worker_gateway)
//    | -- remote_actor(host, port) -------------------> (published actor)
//    | -- (register_atom, register_msg{.., self}) ----> monitor(worker)
//    | <------------------------------ registered_msg
//    | <------------------------ (task_atom, task_msg)  pushed, up to
//    | -- (heartbeat_atom, heartbeat_msg) -----------> max_in_flight leased
//    | <------------------------------- heartbeat_ack   at once
//    | -- (complete_atom, complete_msg) ------------->
//    | <-------------------------------- complete_ack   (or error stale)
//    | -- (drain_atom, worker_id) -------------------> no more pushes
//    | <-------------------------- uint32_t (leased)
//    | -- (unregister_atom, worker_id) --------------> leases handed back
//    | <------------------------- uint32_t (requeued)
//    X  process dies: down_msg at the gateway -> its leases re-queued at once
// ```
//
// Errors are `caf::error`s of category `error_category` ("cafworker") with a
// context string naming the problem; `render_error` turns them into text.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

namespace cerebelum::worker {

/// A workflow definition a worker brings, as a workflows/ file holds it.
struct workflow_source {
  /// Shown in diagnostics, e.g. "orders.yaml".
  std::string name;
  /// "yaml" or "json".
  std::string format;
  std::string text;
};

/// @relates workflow_source
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, workflow_source& x) {
  return f(caf::meta::type_name("workflow_source"), x.name, x.format, x.text);
}

/// Worker -> gateway: joins the node. The gateway monitors `worker` and
/// pushes tasks of `queues` to it.
struct register_msg {
  /// Chosen by the worker, unique per process.
  std::string worker_id;
  std::vector<std::string> queues;
  /// Tasks leased to this worker at once; 0 means 1.
  std::uint32_t max_in_flight = 1;
  std::vector<workflow_source> workflows;
  /// The actor that receives `(task_atom, task_msg)`.
  caf::actor worker;
};

/// @relates register_msg
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, register_msg& x) {
  return f(caf::meta::type_name("register_msg"), x.worker_id, x.queues,
           x.max_in_flight, x.workflows, x.worker);
}

/// Gateway -> worker: the reply to `register_msg`.
struct registered_msg {
  /// Names of the registered workflow definitions.
  std::vector<std::string> workflows;
  /// Default lease length without heartbeats.
  std::int64_t lease_timeout_ms = 0;
};

/// @relates registered_msg
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, registered_msg& x) {
  return f(caf::meta::type_name("registered_msg"), x.workflows,
           x.lease_timeout_ms);
}

/// Gateway -> worker: one leased attempt of a `task` step.
struct task_msg {
  std::string task_id;
  /// Every later message about this task carries it.
  std::string attempt_token;
  std::string execution_id;
  std::string workflow;
  std::string step;
  /// The step's `task:` target; selects the handler.
  std::string task_type;
  std::string queue;
  /// 1 for the first attempt.
  std::uint32_t attempt = 0;
  std::string input_json;
  std::string idempotency_key;
  std::int64_t lease_expires_at_ms = 0;
  /// 0: no heartbeat required (the lease still needs renewing).
  std::int64_t heartbeat_timeout_ms = 0;
  std::int64_t start_to_close_timeout_ms = 0;
  /// Waits the step already went through (JSON object), empty if none.
  std::string resume_json;
};

/// @relates task_msg
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_msg& x) {
  return f(caf::meta::type_name("task_msg"), x.task_id, x.attempt_token,
           x.execution_id, x.workflow, x.step, x.task_type, x.queue, x.attempt,
           x.input_json, x.idempotency_key, x.lease_expires_at_ms,
           x.heartbeat_timeout_ms, x.start_to_close_timeout_ms, x.resume_json);
}

/// Worker -> gateway: extends the lease of an attempt.
struct heartbeat_msg {
  std::string worker_id;
  std::string attempt_token;
  /// Optional progress (JSON object), recorded; empty for none.
  std::string details_json;
};

/// @relates heartbeat_msg
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, heartbeat_msg& x) {
  return f(caf::meta::type_name("heartbeat_msg"), x.worker_id, x.attempt_token,
           x.details_json);
}

/// Gateway -> worker: the reply to `heartbeat_msg`.
struct heartbeat_ack {
  std::int64_t lease_expires_at_ms = 0;
  /// The execution is being cancelled: the handler should stop.
  bool cancel_requested = false;
};

/// @relates heartbeat_ack
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, heartbeat_ack& x) {
  return f(caf::meta::type_name("heartbeat_ack"), x.lease_expires_at_ms,
           x.cancel_requested);
}

/// Worker -> gateway: the outcome of an attempt.
struct complete_msg {
  std::string worker_id;
  std::string attempt_token;
  /// "success", "failure" or "suspend".
  std::string outcome;
  /// success: the step's result (JSON text).
  std::string result_json;
  /// failure: what diverge rules match, a message, optional details (JSON
  /// object text) and whether the retry policy may retry it.
  std::string error_kind;
  std::string error_message;
  std::string error_details_json;
  bool retryable = false;
  /// suspend: the step waits before it is done; when the wait is over it is
  /// dispatched again as a new attempt whose `resume_json` holds `wait_key`.
  std::string wait_key;
  /// > 0: a durable sleep.
  std::int64_t sleep_ms = 0;
  /// true: wait for an operator's approval (data shown to the approver).
  bool approval = false;
  std::string approval_data_json;
  /// 0: the approval waits forever.
  std::int64_t approval_timeout_ms = 0;
};

/// @relates complete_msg
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, complete_msg& x) {
  return f(caf::meta::type_name("complete_msg"), x.worker_id, x.attempt_token,
           x.outcome, x.result_json, x.error_kind, x.error_message,
           x.error_details_json, x.retryable, x.wait_key, x.sleep_ms,
           x.approval, x.approval_data_json, x.approval_timeout_ms);
}

/// Gateway -> worker: the reply to `complete_msg` once the outcome is
/// committed.
struct complete_ack {
  /// True when this message recorded the outcome; false when the same
  /// outcome of this attempt was already recorded.
  bool recorded = false;
};

/// @relates complete_ack
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, complete_ack& x) {
  return f(caf::meta::type_name("complete_ack"), x.recorded);
}

/// Error codes of the protocol (category `error_category`).
enum class errc : std::uint8_t {
  /// Not an error.
  none = 0,
  /// A malformed message: empty worker id or queue, malformed JSON, an
  /// invalid workflow definition (the context is the validator's message).
  invalid_argument,
  /// The worker id is not registered (or registered by another actor).
  unknown_worker,
  /// The attempt token is not leased to this worker (the lease expired, the
  /// step timed out or the execution ended): the result is rejected.
  stale_attempt,
  /// Another live worker actor registered this worker id.
  already_registered,
  /// The node is shutting down or its store is down; retry later.
  unavailable,
  /// The node could not be reached or the connection was lost.
  connection_lost,
  /// A bug or an unexpected failure; the context says what.
  internal,
};

/// The CAF error category of `errc`.
constexpr caf::atom_value error_category = caf::atom("cafworker");

/// Returns the enumerator name of `x`, e.g. "stale_attempt".
std::string to_string(errc x);

/// Wraps `x` and a human-readable context into a `caf::error`.
caf::error make_error(errc x, std::string context);

/// The `errc` of `err` (`errc::internal` for other categories).
errc error_code(const caf::error& err);

/// "stale_attempt: attempt token ... is not leased to worker w1" for errors
/// of this protocol; the system's rendering otherwise.
std::string render_error(caf::actor_system& sys, const caf::error& err);

/// Registers the message types and the error category of the protocol in
/// `cfg`. Both the node and every worker call it before creating the
/// `caf::actor_system`.
void add_protocol_types(caf::actor_system_config& cfg);

} // namespace cerebelum::worker

// The worker protocol owns ids [first_custom_type_id + 150, + 200): the
// supervision module starts at first_custom_type_id, the actors module at
// + 50.
CAF_BEGIN_TYPE_ID_BLOCK(cerebelum_worker, caf::first_custom_type_id + 150)

CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::workflow_source))
CAF_ADD_TYPE_ID(cerebelum_worker,
                (std::vector<cerebelum::worker::workflow_source>))
CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::register_msg))
CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::registered_msg))
CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::task_msg))
CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::heartbeat_msg))
CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::heartbeat_ack))
CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::complete_msg))
CAF_ADD_TYPE_ID(cerebelum_worker, (cerebelum::worker::complete_ack))

CAF_ADD_ATOM(cerebelum_worker, cerebelum::worker, register_atom, "cw_reg")
CAF_ADD_ATOM(cerebelum_worker, cerebelum::worker, task_atom, "cw_task")
CAF_ADD_ATOM(cerebelum_worker, cerebelum::worker, heartbeat_atom, "cw_hb")
CAF_ADD_ATOM(cerebelum_worker, cerebelum::worker, complete_atom, "cw_done")
CAF_ADD_ATOM(cerebelum_worker, cerebelum::worker, drain_atom, "cw_drain")
CAF_ADD_ATOM(cerebelum_worker, cerebelum::worker, unregister_atom, "cw_unreg")

CAF_END_TYPE_ID_BLOCK(cerebelum_worker)

static_assert(caf::id_block::cerebelum_worker::end
                <= caf::first_custom_type_id + 200,
              "the worker protocol owns at most 50 type ids");
