#pragma once

// Dead letters: listing them from the store and retrying one (a command to
// the execution's actor, which appends `execution_resumed` with the dead
// letter row's deletion in one commit and answers after it). Blocking:
// called off the actors' threads (the task router runs them on detached
// actors).

#include <cstdint>
#include <string>

#include "actors/engine_context.hpp"
#include "actors/task_api.hpp"

namespace cerebelum::actors {

/// Lists dead letters of `queue` (empty: all), oldest first.
task_result<dead_letter_list>
list_dead_letters(engine_context& ctx, const std::string& queue,
                  std::size_t page_size, const std::string& page_token);

/// Retries dead letter `id`; answers the execution id.
task_result<std::string> retry_dead_letter(engine_context& ctx, std::int64_t id,
                                           const operator_id& who);

} // namespace cerebelum::actors
