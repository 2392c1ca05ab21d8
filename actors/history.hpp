#pragma once

// Reading an execution back from the store and turning a decision into one
// atomic append: the helpers of the execution actor (the only writer of an
// execution's history); the operators' facade reads with them.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/engine_context.hpp"
#include "eventstore/types.hpp"
#include "workflow/decider.hpp"

namespace cerebelum::actors {

/// An execution folded from its history.
struct loaded_execution {
  engine_context::definition_ptr def;
  std::unique_ptr<workflow::execution_state> state;
};

/// The workflow an execution runs when this node has not loaded it.
struct missing_workflow {
  std::string name;
  std::uint64_t version = 0;
};

/// Folds the history of `id`. Errors: not_found (no history),
/// unknown_workflow (its workflow version is not loaded or registered (yet);
/// `missing`, when given, receives which), store_damaged (the store cannot
/// give the history back: damaged file or undecodable event), internal
/// (unreadable or unreplayable history).
caf::expected<loaded_execution>
load_execution(engine_context& ctx, const std::string& id,
               missing_workflow* missing = nullptr);

/// What an append changes besides its events: the durable rows of timers and
/// tasks before the events were folded into the state.
struct rows_before {
  std::vector<workflow::pending_timer> timers;
  std::vector<workflow::attempt_ref> outstanding;
};

rows_before capture_rows(const workflow::execution_state& state);

/// Builds the atomic append of `evs` (already folded into `state`, which
/// started at `expected_next_seq`): the events, the index row from `state`,
/// the timer rows armed or dropped and the task rows of `commands`; `now_ms`
/// stamps the index row and the new task and dead-letter rows.
eventstore::append_request
make_append(const workflow::execution_state& state,
            std::int64_t expected_next_seq,
            const std::vector<events::Event>& evs, const rows_before& before,
            const std::vector<workflow::command>& commands,
            std::int64_t now_ms);

/// The index row `state` implies, updated at `now_ms`.
eventstore::index_update make_index(const workflow::execution_state& state,
                                    std::int64_t now_ms);

} // namespace cerebelum::actors
