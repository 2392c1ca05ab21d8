#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/engine_api.hpp"
#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// The `engine_api` of a node. Reads (describe, list, history) go straight
/// to the store's index and histories without touching an actor; commands
/// (start, approve, reject, cancel) are requests to the execution's actor
/// through the engine (which spawns it when passive): the actor, the only
/// writer of the execution's history, appends and answers after the commit;
/// `wait` subscribes to the engine. Never call it from inside an actor.
std::shared_ptr<engine_api> make_local_engine(caf::actor_system& sys,
                                              context_ptr ctx);

/// The actor that holds every wait of the node's `engine_api` (`wait`,
/// `wait_async`); a child of the node's supervision tree, announced with
/// `engine_context::set_wait_hub`.
caf::actor spawn_wait_hub(caf::actor_system& sys, context_ptr ctx);

/// Builds what operators see of a folded execution.
execution_view make_view(const workflow::execution_state& state,
                         const eventstore::execution_row& row);

/// Builds what operators see of an index row alone (list).
execution_view make_view(const eventstore::execution_row& row);

} // namespace cerebelum::actors
