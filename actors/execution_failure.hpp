#pragma once

// Marking an execution failed after its actor crashed more often than the
// restart budget allows. The execution's actor (the only writer of its
// history) builds the append here and submits it like any other; its one
// after-commit path then tells the task router that the task rows are gone
// (so they cannot be leased any more), the engine that it finished.

#include <optional>
#include <string>

#include "actors/engine_context.hpp"
#include "actors/operator_id.hpp"
#include "eventstore/result.hpp"

namespace cerebelum::actors {

/// The message recorded for `crashes` crashes, the last one `reason`.
std::string crash_message(int crashes, const std::string& reason);

/// Folds execution_failed{kind "crashed", `message`} into `state` (not
/// terminal) and returns its append: the event, the index row (status
/// failed), its timer rows and every task row of the execution dropped.
eventstore::append_request crash_failure(engine_context& ctx,
                                         workflow::execution_state& state,
                                         const std::string& message);

/// Folds execution_failed{`kind`, `message`} into `state` (not terminal)
/// and returns its append, like `crash_failure`: for a failure the engine
/// decides itself (a decision the store refused for good).
eventstore::append_request
engine_failure(engine_context& ctx, workflow::execution_state& state,
               const std::string& kind, const std::string& message);

/// The same append built from the index row alone, for an execution whose
/// history cannot be folded; nothing when it is terminal already. Errors:
/// the store's, invalid_argument when there is no such execution.
eventstore::result<std::optional<eventstore::append_request>>
crash_failure_from_row(engine_context& ctx, const std::string& id,
                       const std::string& message);

/// An operator's cancel of an execution whose definition neither the node
/// nor the store has (its history cannot be folded): cancel_requested and
/// execution_cancelled, the index row (status cancelled), its timer and task
/// rows dropped, built from the index row alone; nothing when it is terminal
/// already. Errors as `crash_failure_from_row`.
eventstore::result<std::optional<eventstore::append_request>>
cancel_from_row(engine_context& ctx, const std::string& id,
                const operator_id& who, const std::string& reason);

} // namespace cerebelum::actors
