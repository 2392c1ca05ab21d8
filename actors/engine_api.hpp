#pragma once

// The operations a node offers to its operators' interfaces (gRPC
// AdminService, HTTP/JSON API, CLI). Implemented by the engine on top of its
// actors; called from gRPC and HTTP threads, never from inside an actor
// (every call blocks until the engine answers).
//
// Errors are `caf::error`s of category "node" (see actors/errc.hpp) whose
// context is a message naming the problem; `api_error_code` and
// `api_error_message` extract both for the transports.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include "actors/errc.hpp"
#include "actors/metrics.hpp"
#include "actors/operator_id.hpp"
#include "actors/task_api.hpp"
#include "eventstore/types.hpp"
#include "proto/events.pb.h"

namespace cerebelum::eventstore {
class event_store;
} // namespace cerebelum::eventstore

namespace cerebelum::actors {

using json = nlohmann::json;

/// An execution's error as operators see it.
struct error_view {
  std::string kind;
  std::string message;
  json details;
  bool retryable = false;
};

/// What an operator sees of one execution.
struct execution_view {
  std::string execution_id{};
  std::string workflow{};
  std::uint64_t workflow_version = 0;
  eventstore::execution_status status = eventstore::execution_status::running;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  json input{};
  /// Set when completed.
  json result{};
  /// Set when failed (and for cancelled: who and why).
  std::optional<error_view> error{};
  /// Set when sleeping.
  std::optional<std::int64_t> wake_at_ms{};
  /// Set when awaiting approval: the step and the data shown to approvers.
  std::string awaiting_step{};
  json approval_data{};
  std::int64_t history_length = 0;
  /// Internal: the current stage.
  std::string phase{};
  /// Set when the execution is not terminal and cannot make progress: its
  /// definition is missing, its history is damaged or cannot be loaded, or
  /// it sleeps more than a minute past its wake time.
  std::string stuck_reason{};
};

struct start_request {
  std::string workflow;
  json input = json::object();
  /// Optional; starting the same id twice returns the existing execution.
  std::string execution_id;
  std::string started_by;
  /// Beside a principal in `started_by`: the name the caller typed (a
  /// display note, recorded as started_by_note).
  std::string started_by_note{};
  /// The version hash to start; 0: the latest version of `workflow`.
  std::uint64_t version = 0;
};

struct start_response {
  execution_view execution;
  /// False when `execution_id` named an existing execution.
  bool created = true;
};

struct list_request {
  std::optional<eventstore::execution_status> status;
  std::optional<std::string> workflow;
  std::optional<std::int64_t> created_from_ms;
  std::optional<std::int64_t> created_to_ms;
  /// Only executions that cannot make progress (a `stuck_reason`).
  bool stuck = false;
  /// 1..1000; 0 means 100.
  std::size_t page_size = 0;
  std::string page_token;
};

struct list_response {
  std::vector<execution_view> executions;
  /// Empty on the last page.
  std::string next_page_token;
};

/// One version of a workflow.
struct workflow_view {
  std::string name;
  std::uint64_t version = 0;
  /// File path, `worker:<id>` or `builder`.
  std::string source;
  /// Loaded on this node from a file, a worker or the builder (not only
  /// read back from the store).
  bool loaded = false;
  /// The version a start of `name` without a version uses.
  bool latest = false;
  /// In the store (written with the first execution on it).
  bool stored = false;
  std::int64_t stored_at_ms = 0;
  /// Executions on this version that are not terminal.
  std::uint64_t open_executions = 0;
  /// Who owns the name on this node (as `workflow_owner_view::owner`); ""
  /// when the name is only read back from the store.
  std::string owner;
};

/// Who owns a workflow name (docs/security.md).
struct workflow_owner_view {
  std::string name;
  /// The owner on this node: "the node's workflow files"
  /// (eventstore::files_owner), "token 'NAME'" (a worker identity) or
  /// "workers" (workers of a node without tokens).
  std::string owner;
  /// What the store records for the name (its last replacement included),
  /// when it has a row.
  std::optional<eventstore::workflow_owner_row> stored;
};

/// The node's health, as GET /v1/health and `cerebelum health` show it.
struct health_view {
  /// Whether the store answers.
  bool store_available = true;
  /// Since when it is away (milliseconds since the epoch); 0 if available.
  std::int64_t store_unavailable_since_ms = 0;
  /// The last error of the outage; empty if available.
  std::string store_error;
  /// Operations (executions, the scheduler, the resurrector) waiting for
  /// the store.
  std::int64_t waiting = 0;
  /// Store outages since the node started.
  std::uint64_t outages = 0;
};

/// One open execution checked against a new version of its workflow.
struct upgrade_check_view {
  std::string execution_id;
  /// The version it runs on now.
  std::uint64_t version = 0;
  bool compatible = false;
  /// Set when not compatible: the first event of its history that the new
  /// version does not reproduce (`seq` past the end: the new version would
  /// record something more now), and why.
  std::int64_t seq = -1;
  std::string event_type;
  std::string step;
  std::string reason;
  /// `migrate`: it was moved to the new version (execution_migrated
  /// recorded). When compatible but not moved, `reason` says why.
  bool migrated = false;
};

/// What `check_upgrade` found.
struct upgrade_report {
  std::string workflow;
  /// The new definition's version hash.
  std::uint64_t version = 0;
  /// Every open execution of `workflow`, in the index's order.
  std::vector<upgrade_check_view> executions;
};

/// Where `engine_api::follow` hands what it reads.
struct follow_sink {
  /// The events recorded from the position followed, in order, in batches
  /// as they are committed. The first call comes once the history was read,
  /// possibly with none. Returns false to stop following.
  std::function<bool(std::vector<events::Event>)> events;
  /// Once, at the end: no error after the execution's terminal event was
  /// given; otherwise why it cannot be followed (not_found, unavailable: the
  /// store is away at the start or the node stops). Not called after
  /// `events` returned false or the follow was stopped.
  std::function<void(caf::error)> end;
};

/// Stops a `follow` (idempotent; any thread).
using follow_stop = std::function<void()>;

/// The node's operations. Thread-safe; every call blocks until answered.
class engine_api {
 public:
  virtual ~engine_api();

  /// Starts `req.workflow` with `req.input`. Errors: unknown_workflow,
  /// invalid_argument (input not an object, too large, bad id),
  /// unavailable.
  virtual caf::expected<start_response> start(const start_request& req) = 0;

  /// Errors: not_found.
  virtual caf::expected<execution_view> describe(const std::string& id) = 0;

  /// Reads the executions index. Errors: invalid_argument (bad page token).
  virtual caf::expected<list_response> list(const list_request& req) = 0;

  /// The recorded history from `from_seq`. Errors: not_found.
  virtual caf::expected<std::vector<events::Event>>
  history(const std::string& id, std::int64_t from_seq) = 0;

  /// Grants the pending approval; `who` and `data` are recorded. Errors:
  /// not_found, not_awaiting_approval, invalid_argument (empty `who.by`).
  virtual caf::expected<execution_view>
  approve(const std::string& id, const operator_id& who, const json& data) = 0;

  /// Rejects the pending approval; `who` and `reason` are recorded.
  /// Errors: not_found, not_awaiting_approval, invalid_argument.
  virtual caf::expected<execution_view> reject(const std::string& id,
                                               const operator_id& who,
                                               const std::string& reason)
    = 0;

  /// Asks the execution to stop; it ends `cancelled`. Errors: not_found,
  /// already_terminal.
  virtual caf::expected<execution_view> cancel(const std::string& id,
                                               const operator_id& who,
                                               const std::string& reason)
    = 0;

  /// Returns once the execution is terminal. Errors: not_found,
  /// deadline_exceeded.
  virtual caf::expected<execution_view>
  wait(const std::string& id, std::chrono::milliseconds timeout) = 0;

  /// What `start_async` answers with.
  using start_callback = std::function<void(caf::expected<start_response>)>;

  /// `start` holding no thread while the execution's first commit is on
  /// its way: `done` runs exactly once, on the caller's thread (an answer
  /// known at once: a refusal, a known id) or on a CAF thread.
  virtual void start_async(const start_request& req, start_callback done) = 0;

  /// What `wait_async` answers with.
  using wait_callback = std::function<void(caf::expected<execution_view>)>;

  /// `wait` holding no thread: `done` runs exactly once, on a CAF thread
  /// (keep it short), with what `wait` would return.
  virtual void wait_async(const std::string& id,
                          std::chrono::milliseconds timeout, wait_callback done)
    = 0;

  /// Follows the history of `id` from `from_seq` live, holding no thread
  /// between batches: `sink.events` gets what is recorded, as each commit
  /// lands, up to the execution's terminal event (completed, failed,
  /// cancelled), then `sink.end` runs. A store outage after the start is
  /// waited out. A dead letter retried later reopens the execution: follow
  /// it again from the next sequence number.
  virtual follow_stop
  follow(const std::string& id, std::int64_t from_seq, follow_sink sink)
    = 0;

  /// Every version of every workflow this node has loaded or its store
  /// holds, by name then in the order they came.
  virtual std::vector<workflow_view> workflows() = 0;

  /// Checks every open execution of the workflow that `definition_text`
  /// defines against it (docs/upgrades.md): read only. `file` names the
  /// text in diagnostics and picks its format (`.json`: JSON; otherwise
  /// YAML). Errors: invalid_argument (the text is not a valid definition,
  /// naming the problem), unavailable.
  virtual caf::expected<upgrade_report>
  check_upgrade(const std::string& definition_text, const std::string& file)
    = 0;

  /// `check_upgrade`, then moves every compatible open execution to the new
  /// version: its actor checks its history again and records
  /// execution_migrated{from, to, by} (docs/upgrades.md). Incompatible ones
  /// are left as they are. Errors: as `check_upgrade`, and invalid_argument
  /// for an empty or invalid `by`.
  virtual caf::expected<upgrade_report>
  migrate(const std::string& definition_text, const std::string& file,
          const operator_id& who)
    = 0;

  /// Whether the node's store answers; while it is away, probes it (one
  /// cheap read), so that the answer never waits for other traffic.
  virtual health_view health() = 0;

  /// The node's metrics, where the front ends count their requests.
  virtual node_metrics& metrics() = 0;
  /// Every metric in the Prometheus text format (GET /metrics).
  virtual std::string metrics_text() = 0;

  /// Dead letters of `queue` (empty: all), oldest first; `page_size` 0
  /// means 100, at most 1000. Errors: invalid_argument (page size, token),
  /// unavailable.
  virtual caf::expected<dead_letter_list>
  dead_letters(const std::string& queue, std::size_t page_size,
               const std::string& page_token)
    = 0;

  /// Reopens the failed execution of dead letter `id` (its step gets a new
  /// attempt with a fresh retry budget; the dead letter goes in the same
  /// commit); `who` is recorded. Errors: not_found (no such dead letter),
  /// not_retryable (retried already), invalid_argument (bad `by`),
  /// unavailable.
  virtual caf::expected<execution_view>
  retry_dead_letter(std::int64_t id, const operator_id& who) = 0;

  /// Who owns workflow name `name`. Errors: invalid_argument (a bad name),
  /// unknown_workflow (no one defined it), unavailable.
  virtual caf::expected<workflow_owner_view>
  workflow_owner(const std::string& name) {
    return make_error(errc::unavailable,
                      "this engine keeps no owner of '" + name + "'");
  }

  /// Makes worker identity `to` ("token 'NAME'", checked by the front end)
  /// the owner of `name`, recorded as a replacement by `by` and logged.
  /// Errors: invalid_argument, unknown_workflow, not_transferable (this
  /// node's workflow files define it), unavailable.
  virtual caf::expected<workflow_owner_view>
  transfer_workflow(const std::string& name, const std::string& to,
                    const std::string& by) {
    return make_error(errc::unavailable, "this engine cannot transfer '" + name
                                           + "' to " + to + " for " + by);
  }

  /// The node's store, where the front ends keep and check API tokens
  /// (src/auth); null while it is not open (or in a front end's test
  /// double). Its methods are thread-safe.
  virtual eventstore::event_store* token_store() {
    return nullptr;
  }
};

} // namespace cerebelum::actors
