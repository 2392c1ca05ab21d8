#pragma once

// What the task router checks in workers' requests, as pure functions: a
// registration (fields and the definitions it brings) and an outcome (the
// event that records it). No clock, no state: the router passes the time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/payload_limit.hpp"
#include "actors/task_api.hpp"
#include "proto/events.pb.h"
#include "workflow/definition.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::actors {

/// Checks JSON text: at most `max_task_json_bytes`, valid JSON; empty text
/// passes only when `optional`.
std::optional<task_error> check_json(const std::string& text,
                                     std::string_view what, bool optional);

/// Checks a text field of a request against the text rule.
std::optional<task_error>
check_field(std::string_view what, const std::string& value,
            std::size_t max_bytes, workflow::text_rule rule);

/// Checks a registration's worker id and queues and loads the workflow
/// definitions it brings: all of them, or the first error
/// (`invalid_argument`, `invalid_workflow`).
task_result<std::vector<workflow::definition>>
check_registration(const worker_registration& reg);

/// Refuses (`permission_denied`) the first of `defs` with a `call` step or a
/// map of calls: a worker may not make the node run its native functions
/// unless the node allows it (`router_options::allow_worker_calls`).
std::optional<task_error>
check_no_native_calls(const std::string& worker,
                      const std::vector<workflow::definition>& defs);

/// The attempt an outcome reports on.
struct attempt_info {
  std::string step;
  std::uint32_t attempt = 1;
  std::string token; ///< internal token (task row id)
  std::int32_t map_index = -1;
};

/// The event recording `out` of attempt `a` by `worker` at `now_ms`
/// (step_completed, step_failed or step_suspended), or why `out` is
/// malformed. A result, error or approval data over `limit` bytes is
/// recorded as the step's failure, kind `payload_too_large`, not retryable.
task_result<events::Event>
outcome_event(const attempt_info& a, const std::string& worker,
              const task_outcome& out, std::int64_t now_ms,
              std::size_t limit = max_payload_bytes_limit);

} // namespace cerebelum::actors
