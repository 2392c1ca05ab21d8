#pragma once

#include <string>

#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// Marks `id` failed after its actor crashed `crashes` times (last reason
/// `reason`): appends execution_failed (kind "crashed") with the index row
/// and drops its timer and task rows, in one append, then tells the engine.
/// Blocks until committed (a rare path).
void fail_after_crashes(engine_context& ctx, const std::string& id, int crashes,
                        const std::string& reason);

} // namespace cerebelum::actors
