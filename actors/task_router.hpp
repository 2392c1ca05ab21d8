#pragma once

// The task router actor: the facade of the task queue (task_queue.hpp) on
// the node's actors. It loads the store's task rows at boot, applies the
// rows each commit changed (`tasks_atom`, `refused_atom`), answers worker
// front ends through its typed interface (`task_router_actor`,
// task_api.hpp), sends workers' outcomes to the engine (`outcome_atom`) and
// answers them once committed. It arms one timer, for the queue's next due
// moment. docs/worker-protocol.md describes the rules.

#include <caf/fwd.hpp>

#include "actors/attempt_token.hpp"
#include "actors/engine_context.hpp"
#include "actors/task_api.hpp"
#include "actors/task_queue.hpp"

namespace cerebelum::actors {

/// Spawns the router; it loads every task row of the store (attached to
/// `ctx`) before it handles any message.
task_router_actor spawn_task_router(caf::actor_system& sys, context_ptr ctx,
                                    router_options opts);

} // namespace cerebelum::actors
