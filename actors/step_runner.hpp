#pragma once

#include <caf/actor.hpp>

#include "actors/engine_context.hpp"
#include "workflow/decider.hpp"

namespace cerebelum::actors {

/// Runs one attempt of a native `call` step on the context's call pool and
/// sends `(outcome_atom, token, event_ptr)` to `to` with its step_completed
/// or step_failed event (carrying the attempt token).
void dispatch_call(engine_context& ctx, caf::actor to,
                   const workflow::run_step_command& cmd);

} // namespace cerebelum::actors
