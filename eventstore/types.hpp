#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cerebelum::eventstore {

/// Public status of an execution, as stored in the executions index.
enum class execution_status : std::uint8_t {
  running = 0,
  sleeping = 1,
  awaiting_approval = 2,
  completed = 3,
  failed = 4,
  cancelled = 5,
};

/// Returns the stored name of `st`, e.g. "awaiting_approval".
const char* to_string(execution_status st) noexcept;

/// Parses a stored status name; returns `std::nullopt` for unknown names.
std::optional<execution_status> parse_status(std::string_view name) noexcept;

/// Returns whether `st` is completed, failed or cancelled.
constexpr bool is_terminal(execution_status st) noexcept {
  return st == execution_status::completed || st == execution_status::failed
         || st == execution_status::cancelled;
}

/// An event as appended: its type code and the serialized payload message.
/// The store assigns the sequence number.
struct new_event {
  std::int32_t type = 0;
  std::string payload;
  std::int64_t recorded_at_ms = 0;
};

/// An event as stored.
struct stored_event {
  std::int64_t seq = 0;
  std::int32_t type = 0;
  std::string payload;
  std::int64_t recorded_at_ms = 0;
};

/// The execution's index row after an append. Written in the same transaction
/// as the events; `next_seq` is maintained by the store.
struct index_update {
  execution_status status = execution_status::running;
  std::string workflow;
  std::uint64_t workflow_version = 0;
  /// Internal phase (e.g. the current step), free text.
  std::string phase;
  /// Next wake-up of a passivated execution, if any.
  std::optional<std::int64_t> wake_at_ms;
  /// Creation time; used only when the append creates the execution.
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

/// A row of the executions index.
struct execution_row {
  std::string execution_id;
  std::string workflow;
  std::uint64_t workflow_version = 0;
  execution_status status = execution_status::running;
  std::string phase;
  std::int64_t next_seq = 0;
  std::optional<std::int64_t> wake_at_ms;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

/// A durable timer of an execution, keyed by (execution_id, timer_id).
struct timer_row {
  std::string execution_id; ///< Filled by the store on read; ignored on write.
  std::string timer_id;
  std::int64_t fire_at_ms = 0;
  std::string purpose;
  /// Generation of the state that armed the timer (gen_statem-style state
  /// timeouts: a timer of an older generation is stale).
  std::int64_t generation = 0;
};

/// A row of the durable task queue, keyed by `task_id`.
struct task_row {
  std::string task_id;
  std::string execution_id; ///< Filled by the store on read; ignored on write.
  std::string queue;
  std::string step;
  std::int32_t attempt = 1;
  std::string attempt_token;
  std::string idempotency_key;
  std::string payload;
  std::int64_t available_at_ms = 0;
  std::string lease_owner;
  std::optional<std::int64_t> lease_expires_at_ms;
};

/// A dead letter: a task whose failure failed its execution. The store
/// assigns `id` on insert.
struct dead_letter_row {
  std::int64_t id = 0; ///< Assigned by the store; ignored on write.
  std::string task_id;
  std::string execution_id; ///< Filled by the store on read; ignored on write.
  std::string queue;
  std::int32_t attempt = 1;
  /// What to show and retry: JSON object text (workflow, step, input, ...).
  std::string payload;
  /// The step's error: JSON object text.
  std::string error;
  std::int64_t failed_at_ms = 0;
};

/// A workflow definition as stored, content-addressed: one row per
/// (name, version), written once (insert-if-absent) and never changed.
struct definition_row {
  std::string name;
  /// The definition's version hash.
  std::uint64_t version = 0;
  /// The canonical JSON document of the definition.
  std::string document;
  /// Where it came from: a file path, `worker:<id>` or `builder`.
  std::string source;
  /// When it was first stored (ms since the epoch).
  std::int64_t stored_at_ms = 0;
};

/// One API token of a principal (see docs/security.md). The secret itself
/// is never stored: `hash` is its salted slow hash (scrypt, encoded with
/// its parameters and salt). A principal bound to a client certificate has
/// no secret: `hash` is empty and `cert_subject` names the certificate.
struct token_row {
  /// Public id: the part of the token before its secret; unique.
  std::string id;
  /// The principal's name, recorded as who did what.
  std::string name;
  /// admin, operator, starter, reader or worker.
  std::string role;
  /// Queues a worker token may serve (empty: every queue).
  std::vector<std::string> queues;
  /// Workflows a starter or operator token may start (empty: every one).
  std::vector<std::string> workflows;
  std::string hash;
  std::int64_t created_at_ms = 0;
  /// 0: never expires.
  std::int64_t expires_at_ms = 0;
  /// 0: not revoked.
  std::int64_t revoked_at_ms = 0;
  /// 0: never used.
  std::int64_t last_used_ms = 0;
  /// The subject (normalised RFC 2253 form, src/auth/cert_subject.hpp) of
  /// the client certificates this principal is, or "" for a token.
  std::string cert_subject;
};

/// Who owns a workflow name (schema version 5; the replacement columns 6;
/// docs/security.md). Owners are "token 'NAME'" (a worker identity) or
/// `files_owner` (the node's workflow files).
struct workflow_owner_row {
  std::string name;
  std::string owner;
  /// When the name was first claimed.
  std::int64_t claimed_at_ms = 0;
  /// The last replacement: the owner before it, who replaced it ("token
  /// 'NAME'" of an admin, or `files_owner`) and when; "", "" and 0 when the
  /// name never changed hands.
  std::string previous_owner;
  std::string replaced_by;
  std::int64_t replaced_at_ms = 0;
};

/// The owner the store records for names the node's workflow files took.
inline constexpr const char* files_owner = "the node's workflow files";

/// One atomic append: the events, the index row and the timer/task changes of
/// one execution commit together or not at all.
struct append_request {
  std::string execution_id;
  /// The sequence number the first new event gets; 0 creates the execution.
  std::int64_t expected_next_seq = 0;
  std::vector<new_event> events;
  index_update index;
  std::vector<timer_row> timer_upserts;
  std::vector<std::string> timer_deletes;
  std::vector<task_row> task_upserts;
  std::vector<std::string> task_deletes;
  std::vector<dead_letter_row> dead_letter_inserts;
  /// Ids of dead letters of this execution to delete.
  std::vector<std::int64_t> dead_letter_deletes;
  /// Definitions the execution runs on, inserted unless a row of the same
  /// (name, version) exists (written with the execution's first append).
  std::vector<definition_row> definition_inserts;

  /// Approximate memory held by this request (queue accounting).
  std::size_t byte_size() const noexcept;
};

/// Acknowledgement of a committed append.
struct append_ack {
  std::int64_t first_seq = 0;
  /// The execution's next sequence number after this append.
  std::int64_t next_seq = 0;
};

/// Filter of `list_executions`; empty fields match everything.
struct list_filter {
  std::optional<execution_status> status;
  std::optional<std::string> workflow;
  /// Inclusive lower bound of `created_at_ms`.
  std::optional<std::int64_t> created_from_ms;
  /// Exclusive upper bound of `created_at_ms`.
  std::optional<std::int64_t> created_to_ms;
};

/// One page of executions, ordered by (created_at_ms, execution_id).
struct execution_page {
  std::vector<execution_row> rows;
  /// Pass to the next call; empty when this is the last page.
  std::string next_page_token;
};

/// One page of task rows, ordered by task_id.
struct task_page {
  std::vector<task_row> rows;
  /// Pass to the next call; empty when this is the last page.
  std::string next_page_token;
};

/// One page of dead letters, ordered by id.
struct dead_letter_page {
  std::vector<dead_letter_row> rows;
  /// Pass to the next call; empty when this is the last page.
  std::string next_page_token;
};

/// Limits on appended data.
struct store_limits {
  std::size_t max_payload_bytes = 1024 * 1024;
  std::size_t max_execution_id_bytes = 256;
  std::size_t max_events_per_append = 10'000;
};

} // namespace cerebelum::eventstore
