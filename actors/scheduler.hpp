#pragma once

#include <caf/fwd.hpp>

#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// Spawns the scheduler of durable timers (see scheduler.cpp).
caf::actor spawn_scheduler(caf::actor_system& sys, context_ptr ctx);

} // namespace cerebelum::actors
