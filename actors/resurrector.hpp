#pragma once

// The resurrector: rebuilds the node's live executions at boot.

#include <caf/fwd.hpp>

#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// Spawns the resurrector: pages through every open execution of the index
/// once, respawns the running ones (their in-flight steps are re-dispatched
/// as new attempts from resume_commands) and leaves sleeping and waiting ones
/// passive (the scheduler pages their timers from the store), then exits
/// normally. A running execution whose history cannot be read back (damaged
/// store) is set aside, not respawned: one error line lists them all
/// (bounded) with their count. An index that cannot be read is fatal
/// (`engine_context::fatal`): the node stops, reporting it once.
caf::actor spawn_resurrector(caf::actor_system& sys, context_ptr ctx);

} // namespace cerebelum::actors
