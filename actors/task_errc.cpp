// The names of the task router's error codes (actors/task_api.hpp), apart
// from the router so that the request checks and conversions link without
// it (tests/fuzz/worker_request_fuzz.cpp).
#include "actors/task_api.hpp"

namespace cerebelum::actors {

const char* to_string(task_errc c) noexcept {
  switch (c) {
    case task_errc::invalid_argument: return "invalid_argument";
    case task_errc::unknown_worker: return "unknown_worker";
    case task_errc::unknown_queue: return "unknown_queue";
    case task_errc::stale_token: return "stale_token";
    case task_errc::invalid_json: return "invalid_json";
    case task_errc::oversized: return "oversized";
    case task_errc::invalid_workflow: return "invalid_workflow";
    case task_errc::permission_denied: return "permission_denied";
    case task_errc::unavailable: return "unavailable";
    case task_errc::not_found: return "not_found";
    case task_errc::not_retryable: return "not_retryable";
  }
  return "unknown";
}

} // namespace cerebelum::actors
