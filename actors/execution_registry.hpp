#pragma once

#include <caf/fwd.hpp>

#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// Spawns the execution registry: id -> live execution actor. It routes
/// wake-ups, timer firings and operators' notifications to the live actor of
/// an execution, spawning it under the executions supervisor when it is
/// passivated, runs the passivation handshake and tells waiters when an
/// execution finished. It holds nothing for a passivated execution.
caf::actor spawn_execution_registry(caf::actor_system& sys, context_ptr ctx);

} // namespace cerebelum::actors
