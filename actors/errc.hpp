#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace cerebelum::eventstore {
struct error;
} // namespace cerebelum::eventstore

namespace cerebelum::actors {

/// Error codes of the engine's actors and of the node. Errors carry the
/// category `error_category` ("node").
enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// The data directory cannot be created, opened or written.
  data_dir_unusable,
  /// Another process holds the data directory's lock (another node runs on
  /// it); the context names the directory and the holder's pid.
  data_dir_locked,
  /// No execution has this id.
  not_found,
  /// No workflow of this name is loaded or registered.
  unknown_workflow,
  /// A request is malformed: bad JSON, oversized input, empty operator name.
  invalid_argument,
  /// Approve or reject of an execution that is not awaiting approval.
  not_awaiting_approval,
  /// The operation needs a running execution, but it has finished.
  already_terminal,
  /// A wait ended before the execution finished.
  deadline_exceeded,
  /// The node is stopping or its store is unreachable; retry later.
  unavailable,
  /// A bug or an unexpected store failure; the context says what.
  internal,
  /// The store is damaged: an execution's history cannot be read back or
  /// decoded, or the node's index cannot be read. Retrying cannot help;
  /// restore the store from a backup.
  store_damaged,
  /// A dead letter whose execution is no longer failed by its task (it was
  /// retried already).
  not_retryable,
  /// A payload (input, approval data) over the node's `--max-payload-bytes`,
  /// or an event over the store's limit; the context names the size and the
  /// limit.
  payload_too_large,
  /// The node is over capacity (its store writer's queue is backing up): a
  /// start is refused before anything is written; retry in a second.
  overloaded,
  /// An execution's history is not what the version it was to be migrated
  /// to would have recorded (docs/upgrades.md); the context names the first
  /// event that differs.
  incompatible,
  /// The request carries no valid credentials (docs/security.md).
  unauthenticated,
  /// The caller's role or scopes do not allow the request.
  permission_denied,
  /// The owner of a workflow name cannot be transferred here: this node's
  /// workflow files define it (they own it on this node), or the node runs
  /// without tokens (its workers are one identity).
  not_transferable,
};

/// The CAF error category of `errc`, at most 10 characters.
constexpr caf::atom_value error_category = caf::atom("node");

/// Returns whether `err` says that the store is damaged (`corrupt_store`,
/// `corrupt_event`, `unknown_event_type`), not unreachable or misused.
bool is_store_damage(const eventstore::error& err);

/// Returns the enumerator name of `x`, e.g. "data_dir_locked".
std::string to_string(errc x);

/// Wraps `x` and a human-readable context into a `caf::error`.
caf::error make_error(errc x, std::string context);

/// Returns the `errc` of `err`, `errc::internal` for errors of other
/// categories, `errc::none` for no error.
errc api_error_code(const caf::error& err);

/// Returns the context message of `err` (or its rendering when it has none).
std::string api_error_message(const caf::error& err);

} // namespace cerebelum::actors
