#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/result.hpp"
#include "eventstore/types.hpp"

namespace cerebelum::eventstore {

/// Result of one append.
using append_result = result<append_ack>;

/// Receives the events of `event_store::read` in order; returns `false` to
/// stop early.
using read_callback = std::function<bool(const stored_event&)>;

/// The durable, append-only store of execution histories plus the index,
/// timer and task tables that are written in the same transactions.
///
/// Implementations are thread-safe. They catch every database exception at
/// this boundary and report it as an `error`; no exception escapes.
class event_store {
 public:
  virtual ~event_store();

  /// Appends one request atomically. Equivalent to `append_batch` of one.
  append_result append(const append_request& req);

  /// Appends `reqs` in one database transaction (group commit). Returns one
  /// result per request, in order. A conflict or invalid request fails only
  /// itself; a database failure fails every request of the batch and says
  /// whether the batch possibly committed.
  virtual std::vector<append_result>
  append_batch(std::span<const append_request> reqs) = 0;

  /// Streams the events of `execution_id` with `seq >= from_seq` in order to
  /// `fn`, without loading the whole history in memory. Returns the number of
  /// events delivered. An unknown execution has an empty history.
  virtual result<std::size_t> read(std::string_view execution_id,
                                   std::int64_t from_seq,
                                   const read_callback& fn)
    = 0;

  /// Returns the index row of `execution_id`, or `std::nullopt`.
  virtual result<std::optional<execution_row>>
  get_execution(std::string_view execution_id) = 0;

  /// Lists executions matching `filter` from the index (never scanning
  /// events), ordered by (created_at_ms, execution_id). `page_token` is empty
  /// for the first page or the `next_page_token` of the previous page.
  virtual result<execution_page> list_executions(const list_filter& filter,
                                                 std::size_t page_size,
                                                 std::string_view page_token)
    = 0;

  /// Lists executions that are not terminal (for the resurrector), paged as
  /// `list_executions`.
  virtual result<execution_page>
  open_executions(std::size_t page_size, std::string_view page_token) = 0;

  /// Returns up to `limit` timers with `fire_at_ms <= until_ms`, earliest
  /// first (for the scheduler).
  virtual result<std::vector<timer_row>>
  due_timers(std::int64_t until_ms, std::size_t limit) = 0;

  /// Returns the timers of one execution, ordered by timer id.
  virtual result<std::vector<timer_row>>
  timers_of(std::string_view execution_id) = 0;

  /// Returns the tasks of one execution, ordered by task id.
  virtual result<std::vector<task_row>> tasks_of(std::string_view execution_id)
    = 0;

  /// Pages every task row (the task router's recovery at boot), ordered by
  /// task_id. `page_token` is empty for the first page or the
  /// `next_page_token` of the previous page.
  virtual result<task_page>
  all_tasks(std::size_t page_size, std::string_view page_token) = 0;

  /// Lists dead letters, oldest first, optionally of one queue (empty: every
  /// queue), paged as `all_tasks`.
  virtual result<dead_letter_page>
  list_dead_letters(std::string_view queue, std::size_t page_size,
                    std::string_view page_token)
    = 0;

  /// Returns the dead letter `id`, or `std::nullopt`.
  virtual result<std::optional<dead_letter_row>>
  get_dead_letter(std::int64_t id) = 0;

  /// Stores `row` unless a definition of the same (name, version) is stored
  /// already (the first one stays: a version is its content).
  status put_definition(const definition_row& row);

  /// Stores each of `rows` as `put_definition`, in one transaction.
  virtual status put_definitions(std::span<const definition_row> rows) = 0;

  /// The stored definition `name` version `version`, or `std::nullopt`.
  virtual result<std::optional<definition_row>>
  get_definition(std::string_view name, std::uint64_t version) = 0;

  /// Every stored definition of `name` (empty: of every name), ordered by
  /// (name, stored_at_ms, version); with their documents when `documents`.
  virtual result<std::vector<definition_row>>
  list_definitions(std::string_view name, bool documents) = 0;

  // -- tokens (docs/security.md) -----------------------------------------
  //
  // Not pure: a store without a tokens table answers `invalid_argument`
  // ("this store keeps no tokens").

  /// Stores a new token; `conflict` when its id exists, `invalid_argument`
  /// when its id is empty or it has neither or both of a hash and a
  /// certificate subject.
  virtual status put_token(const token_row& row);
  /// The token `id`, or `std::nullopt`.
  virtual result<std::optional<token_row>> get_token(std::string_view id);
  /// Every token (revoked and expired ones too), ordered by created_at_ms.
  virtual result<std::vector<token_row>> list_tokens();
  /// Marks `id` revoked at `at_ms` (the first revocation stays). Whether a
  /// token `id` exists.
  virtual result<bool> revoke_token(std::string_view id, std::int64_t at_ms);
  /// Sets `id`'s last use to `at_ms` when later than the stored one.
  virtual status touch_token(std::string_view id, std::int64_t at_ms);

  // Workflow names and who owns them (schema version 5, replacements 6;
  // docs/security.md): a name a worker identity defined first stays that
  // identity's across restarts and on every node of the store, until an
  // admin or the node's workflow files replace it.

  /// Records `owner` as the owner of workflow name `name` at `at_ms` unless
  /// the name has one; returns the owner stored (the earlier one, or
  /// `owner`).
  virtual result<std::string> claim_workflow(std::string_view name,
                                             std::string_view owner,
                                             std::int64_t at_ms);
  /// The owner row of `name`, or `std::nullopt` when no one claimed it.
  virtual result<std::optional<workflow_owner_row>>
  get_workflow_owner(std::string_view name);
  /// Makes `owner` the owner of `name` at `at_ms`, whoever owned it (or no
  /// one), and records the replacement: the owner it had (previous_owner),
  /// `by` and `at_ms`. Returns the row as stored.
  virtual result<workflow_owner_row>
  replace_workflow_owner(std::string_view name, std::string_view owner,
                         std::string_view by, std::int64_t at_ms);

  /// The schema version this store runs on.
  virtual int schema_version() const noexcept = 0;
};

/// The schema version this build writes and understands. Version 2 added
/// the `definitions` table; version 3 the core event execution_migrated
/// (type 21; no table changes); version 4 the `tokens` table; version 5
/// the `workflow_owners` table and the `tokens.cert_subject` column;
/// version 6 the replacement columns of `workflow_owners` (previous_owner,
/// replaced_by, replaced_at_ms). An older store is migrated in place at
/// open.
inline constexpr int current_schema_version = 6;

/// The highest core event type code (1..999) that `current_schema_version`
/// defines. A new core type raises both (codec_test holds events.proto to
/// it).
inline constexpr int highest_core_event_type = 21;

/// Checks `req` against `limits`: non-empty execution id, non-negative
/// `expected_next_seq`, payload sizes, non-empty timer and task ids. The
/// error names the offending field.
status validate(const append_request& req, const store_limits& limits);

/// Checks a stored schema version against `current_schema_version` and
/// returns an actionable error when the node cannot use it.
status check_schema_version(int stored, std::string_view where);

} // namespace cerebelum::eventstore
