#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// Spawns the actor of execution `id` (see execution.cpp). The start function
/// of the executions supervisor's template.
caf::actor spawn_execution(caf::actor_system& sys, context_ptr ctx,
                           std::string id);

} // namespace cerebelum::actors
