#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include <caf/actor.hpp>

#include "actors/engine_context.hpp"
#include "workflow/decider.hpp"

namespace cerebelum::actors {

/// When a pool thread began running an attempt (engine clock, ms; 0 while
/// it waits in the pool's queue).
using began_at = std::shared_ptr<std::atomic<std::int64_t>>;

/// What became of an attempt handed to `dispatch_call`.
struct dispatched {
  /// Posted to the call pool: its outcome comes as a message, and the pool
  /// thread that takes it sets this when it begins.
  began_at on_pool;
  /// Otherwise its outcome, found at once; none when a function that runs
  /// on the actor took longer than the step's timeout (its result is
  /// dropped: the step's timeout timer fails the attempt, as it does when
  /// a pool call's result comes late).
  std::optional<events::Event> outcome;
};

/// Runs one attempt of a native `call` step. Its outcome is a
/// step_completed or step_failed event carrying the attempt token.
/// - A function that runs on the pool (`run_on::pool`) is posted to the
///   context's call pool, which sends `(outcome_atom, token, event_ptr)` to
///   `to`.
/// - A function that runs on the actor (`run_on::actor`) runs here, on the
///   caller's thread.
/// - An unknown function fails the attempt (`unknown_function`) here.
dispatched dispatch_call(engine_context& ctx, caf::actor to,
                         const workflow::run_step_command& cmd);

} // namespace cerebelum::actors
