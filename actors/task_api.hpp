#pragma once

// The task router's typed interface (`task_router_actor`) and its facade for
// worker front ends that are not actors: the gRPC WorkerService
// (src/bridges/worker_service.cpp) and the CAF worker gateway
// (src/bridges/caf/worker_gateway.*). The compiler checks every message to
// the router against the interface; no callback ever travels through a
// mailbox: each facade call is one request from a short-lived actor whose
// response handler runs the callback, exactly once, on a CAF thread (keep it
// short, never block in it). The facade is thread-safe and cheap to copy
// around as a shared_ptr.
//
// Lease and attempt rules (docs/worker-protocol.md):
// - a task (one attempt of a `task` step) is leased to one worker at a time;
//   the lease lasts `heartbeat_timeout_ms` of the step when set, else the
//   router's default lease (`--task-lease`); each heartbeat extends it;
// - lease expiry, `unregister` and `worker_lost` fail the attempt (step_failed,
//   kind "heartbeat_timeout" / "lease_expired" / "worker_lost", retryable,
//   `lost`): the execution offers the step again without using its retry
//   budget (workflow::reoffer_policy), a new attempt arrives as a new task
//   with a new token;
// - `complete` answers once the execution COMMITTED the outcome, or with
//   `stale_token` when the attempt is no longer outstanding.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"

namespace cerebelum::actors {

/// Named error codes of the task API.
enum class task_errc {
  /// Empty or malformed field (worker id, queue name, wait key, ...).
  invalid_argument,
  /// The worker id is not registered (or was unregistered / lost).
  unknown_worker,
  /// A poll names a queue the worker did not register.
  unknown_queue,
  /// The attempt token is not leased to this worker (lease expired, step
  /// timed out, execution ended, never existed).
  stale_token,
  /// A JSON field (result, details, approval data) is not valid JSON.
  invalid_json,
  /// A result or details text is larger than the limit (1 MiB).
  oversized,
  /// A workflow definition brought by `register_worker` does not validate.
  invalid_workflow,
  /// A workflow definition brought by `register_worker` may not come from
  /// this worker: its name belongs to another source (the node's workflow
  /// files or another worker), or it calls native functions and the node
  /// does not allow that of workers (`--allow-worker-calls`).
  permission_denied,
  /// The node is shutting down or its store is down.
  unavailable,
  /// No such dead letter.
  not_found,
  /// The dead letter's execution is no longer failed by that task (it was
  /// retried already).
  not_retryable,
};

/// Stable name of `c`, e.g. "stale_token".
const char* to_string(task_errc c) noexcept;

struct task_error {
  task_errc code = task_errc::unavailable;
  std::string message;
};

/// Either a value or a task_error.
template <class T>
struct task_result {
  std::optional<T> value;
  std::optional<task_error> error;

  static task_result ok(T x) {
    task_result r;
    r.value = std::move(x);
    return r;
  }
  static task_result fail(task_errc c, std::string msg) {
    task_result r;
    r.error = task_error{c, std::move(msg)};
    return r;
  }
  explicit operator bool() const noexcept {
    return value.has_value();
  }
};

/// A workflow definition brought by a worker (text as a workflows/ file).
struct workflow_source {
  std::string name;   ///< shown in diagnostics, e.g. "orders.yaml"
  std::string format; ///< "yaml" or "json"
  std::string text;
};

struct worker_registration {
  std::string worker_id;
  std::vector<std::string> queues;
  std::vector<workflow_source> workflows;
  /// Tasks leased to this worker at once; 0 = 1.
  std::uint32_t max_in_flight = 1;
  /// Who the front end authenticated (e.g. "token 'billing' (5f1c...)"):
  /// the workflow names the worker defines belong to it. Empty on a node
  /// without tokens: worker ids are then unauthenticated, and every worker
  /// is one identity (engine_context::register_definitions).
  std::string identity;
  /// The principal's role may replace owners (the admin role, permission
  /// `ownership`): names of other worker identities become `identity`'s.
  bool may_replace = false;
};

struct registration_info {
  /// Names of the registered definitions.
  std::vector<std::string> workflows;
  /// Default lease length (steps without a heartbeat timeout).
  std::int64_t lease_timeout_ms = 0;
};

/// One leased attempt of a `task` step.
struct leased_task {
  std::string task_id;
  std::string attempt_token;
  std::string execution_id;
  std::string workflow;
  std::string step;
  std::string task_type;
  std::string queue;
  std::uint32_t attempt = 1;
  std::string input_json;
  std::string idempotency_key;
  std::int64_t lease_expires_at_ms = 0;
  std::int64_t heartbeat_timeout_ms = 0;
  std::int64_t start_to_close_timeout_ms = 0;
  std::string resume_json = "{}";
};

struct heartbeat_info {
  std::int64_t lease_expires_at_ms = 0;
  bool cancel_requested = false;
};

/// What a worker reports for an attempt.
struct task_success {
  std::string result_json;
};
struct task_failure {
  std::string kind;
  std::string message;
  std::string details_json; ///< optional JSON object text
  bool retryable = true;
};
struct task_suspend {
  std::string wait_key;
  std::int64_t sleep_ms = 0; ///< > 0: durable sleep
  bool approval = false;     ///< wait for an operator's approval
  std::string approval_data_json;
  std::int64_t approval_timeout_ms = 0; ///< 0 = forever
};
using task_outcome = std::variant<task_success, task_failure, task_suspend>;

struct complete_info {
  /// true: this call recorded the outcome; false: the same outcome of this
  /// attempt was already recorded by an earlier call (a retried call).
  bool recorded = true;
  /// Asked for with `want_next`: a ready task now leased to the worker.
  std::optional<leased_task> next;
};

/// Largest result / details / approval data, in bytes of JSON text.
inline constexpr std::size_t max_task_json_bytes = 1024 * 1024;

/// A task whose unhandled failure failed its execution.
struct dead_letter_view {
  std::int64_t id = 0;
  std::string task_id; ///< the attempt token of the last attempt
  std::string execution_id;
  std::string workflow;
  std::string step;
  std::int32_t map_index = -1;
  std::string queue;
  std::uint32_t attempt = 0;
  std::string task_type;
  std::string input_json;
  std::string error_kind;
  std::string error_message;
  std::string error_details_json;
  bool error_retryable = false;
  std::int64_t failed_at_ms = 0;
};

struct dead_letter_list {
  std::vector<dead_letter_view> items;
  std::string next_page_token;
};

// -- the router's interface ---------------------------------------------------

using task_register_atom = caf::atom_constant<caf::atom("tregister")>;
using task_poll_atom = caf::atom_constant<caf::atom("tpoll")>;
using task_unpoll_atom = caf::atom_constant<caf::atom("tunpoll")>;
using task_release_atom = caf::atom_constant<caf::atom("trelease")>;
using task_beat_atom = caf::atom_constant<caf::atom("tbeat")>;
using task_complete_atom = caf::atom_constant<caf::atom("tcomplete")>;
using task_leave_atom = caf::atom_constant<caf::atom("tleave")>;
using task_lost_atom = caf::atom_constant<caf::atom("tlost")>;
using task_due_atom = caf::atom_constant<caf::atom("tdue")>;
using dlq_list_atom = caf::atom_constant<caf::atom("dlqlist")>;
using dlq_retry_atom = caf::atom_constant<caf::atom("dlqretry")>;

using poll_reply = task_result<std::optional<leased_task>>;

/// The task router. Executions tell it the task rows each commit changed
/// (`tasks_atom`) and the outcomes they refused (`refused_atom`); worker
/// front ends ask it the rest. A poll is answered when it gets a task or its
/// wait ends (or `task_unpoll_atom` ends it); a completion once committed.
using task_router_actor = caf::typed_actor<
  // (execution id, rows a commit changed)
  caf::reacts_to<tasks_atom, std::string, task_changes_ptr>,
  // (execution id, internal token of an outcome it refused)
  caf::reacts_to<refused_atom, std::string, std::string>,
  caf::replies_to<task_register_atom,
                  worker_registration>::with<task_result<registration_info>>,
  // (poll id, worker, queues, wait in ms)
  caf::replies_to<task_poll_atom, std::uint64_t, std::string,
                  std::vector<std::string>, std::int64_t>::with<poll_reply>,
  // (poll id)
  caf::reacts_to<task_unpoll_atom, std::uint64_t>,
  // (worker, attempt token)
  caf::reacts_to<task_release_atom, std::string, std::string>,
  // (worker, attempt token, details JSON)
  caf::replies_to<task_beat_atom, std::string, std::string,
                  std::string>::with<task_result<heartbeat_info>>,
  // (worker, attempt token, outcome, whether to lease the worker's next task)
  caf::replies_to<task_complete_atom, std::string, std::string, task_outcome,
                  bool>::with<task_result<complete_info>>,
  // (worker): unregister; answers the attempts handed back
  caf::replies_to<task_leave_atom,
                  std::string>::with<task_result<std::uint32_t>>,
  // (worker, reason): the worker's connection died
  caf::reacts_to<task_lost_atom, std::string, std::string>,
  // (queue, page size, page token)
  caf::replies_to<dlq_list_atom, std::string, std::uint64_t,
                  std::string>::with<task_result<dead_letter_list>>,
  // (dead letter id, operator, operator's typed name as a note)
  caf::replies_to<dlq_retry_atom, std::int64_t, std::string,
                  std::string>::with<task_result<std::string>>,
  // open tasks, ready tasks, leases granted since start
  caf::replies_to<stats_atom>::with<std::uint64_t, std::uint64_t,
                                    std::uint64_t>,
  // the router's own timer: something is due
  caf::reacts_to<tick_atom>,
  // (attempt token): when its start-to-close timeout may fire (engine clock,
  // ms), counted from its current lease; 0 = now (not an open task)
  caf::replies_to<task_due_atom, std::string>::with<std::int64_t>>;

/// Cancels a pending poll: the poll's callback then runs at once with no
/// task (if it did not run yet). A task handed to a callback whose poll was
/// cancelled concurrently stays leased: call `task_api::release` for it.
class poll_handle {
 public:
  poll_handle() = default;
  poll_handle(task_router_actor router, std::uint64_t id)
    : router_(std::move(router)), id_(id) {
    // nop
  }
  void cancel() const;
  std::uint64_t id() const noexcept {
    return id_;
  }

 private:
  task_router_actor router_;
  std::uint64_t id_ = 0;
};

/// The facade. Obtain it from the node (`node::tasks()`), or as the second
/// argument of `node_config::bridges`.
class task_api {
 public:
  template <class T>
  using callback = std::function<void(task_result<T>)>;

  explicit task_api(task_router_actor router);
  /// Finds the router at each call (it may be restarted by its supervisor).
  explicit task_api(std::function<task_router_actor()> locate);

  /// Registers (or re-registers, replacing queues and limits) a worker and
  /// adds the workflow definitions it brings to the node. A definition that
  /// does not validate fails the whole call (invalid_workflow, with the
  /// validator's diagnostic) and registers nothing; so does one the worker
  /// may not bring (permission_denied): a name the node's workflow files or
  /// another worker defined first, or a `call` step while the node does not
  /// allow workers native calls.
  void register_worker(worker_registration reg,
                       callback<registration_info> done) const;

  /// Long-polls `queues` (empty: every queue the worker registered) for up to
  /// `wait` (0: 30 s). `done` runs once: with a task now leased to the
  /// worker, or with nothing when the wait ended.
  poll_handle poll(std::string worker_id, std::vector<std::string> queues,
                   std::chrono::milliseconds wait,
                   callback<std::optional<leased_task>> done) const;

  /// Hands back a task leased by `poll` that never reached the worker (its
  /// caller went away): it is ready again with the same attempt, no failure
  /// recorded. Unknown or foreign tokens are ignored.
  void release(std::string worker_id, std::string token) const;

  /// Extends the lease of `token`; `details_json` (optional) is recorded as
  /// step progress (rate-limited).
  void heartbeat(std::string worker_id, std::string token,
                 std::string details_json, callback<heartbeat_info> done) const;

  /// Reports the outcome of the attempt `token`; `done` runs once the
  /// execution committed it (or it was refused as stale). With `want_next`,
  /// the answer also carries a task of the worker's queues that was ready
  /// then, leased to it (`complete_info::next`).
  void complete(std::string worker_id, std::string token, task_outcome outcome,
                callback<complete_info> done, bool want_next = false) const;

  /// The worker leaves: its leased tasks fail as "worker_lost" (retryable)
  /// and are re-run per retry policy. Returns the number handed back.
  void unregister(std::string worker_id, callback<std::uint32_t> done) const;

  /// The worker's connection died (CAF down_msg): as `unregister`, at once.
  void worker_lost(std::string worker_id, std::string reason) const;

  // -- dead letters (operators) ---------------------------------------------

  /// Lists dead letters, oldest first, of `queue` (empty: all).
  void list_dead_letters(std::string queue, std::size_t page_size,
                         std::string page_token,
                         callback<dead_letter_list> done) const;

  /// Reopens the failed execution of dead letter `id` (its step gets a new
  /// attempt with a fresh retry budget) and deletes the dead letter in the
  /// same commit; answers the execution id.
  void retry_dead_letter(std::int64_t id, operator_id who,
                         callback<std::string> done) const;

  /// The router actor (null when the node has none).
  task_router_actor router() const;

 private:
  template <class T, class... Ts>
  void ask(const task_router_actor& target, std::function<void(T)> done,
           Ts&&... xs) const;

  task_router_actor router_;
  std::function<task_router_actor()> locate_;
  /// Receives the router's answers (made at the first request).
  mutable std::mutex sink_mtx_;
  mutable caf::actor sink_;
};

using task_api_ptr = std::shared_ptr<const task_api>;

} // namespace cerebelum::actors

// Local messages of the router's interface: plain values, never serialized
// (the CAF worker port has its own wire types in sdk/cpp/protocol.hpp).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::worker_registration)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::task_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  cerebelum::actors::task_result<cerebelum::actors::registration_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::poll_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  cerebelum::actors::task_result<cerebelum::actors::heartbeat_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  cerebelum::actors::task_result<cerebelum::actors::complete_info>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::task_result<std::uint32_t>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  cerebelum::actors::task_result<cerebelum::actors::dead_letter_list>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::task_result<std::string>)
