// Fuzzes a worker's protobuf requests as the node takes them from the CAF
// worker port and the gRPC WorkerService: the bytes are decoded as the
// port decodes a message (wire::decode), converted (worker_convert) and
// checked by the task router's checks (actors/task_checks.hpp): a
// RegisterRequest loads every workflow definition it brings, a
// CompleteTaskRequest becomes the event recording its outcome, which is then
// rendered as the HTTP API and the CLI render history (event_to_json). The
// first input byte picks the request. Nothing may crash, leak or throw; an
// outcome the checks accept must record a payload within the limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "actors/task_checks.hpp"
#include "src/bridges/json_convert.hpp"
#include "src/bridges/worker_convert.hpp"
#include "wire/wire.hpp"
#include "workflow/safe_text.hpp"

using namespace cerebelum;

namespace {

void register_worker(const std::string& bytes) {
  worker::RegisterRequest req;
  if (wire::decode(req, bytes)) return;
  auto defs = actors::check_registration(api::to_registration(req));
  if (!defs.value) return;
  (void)actors::check_no_native_calls(req.worker_id(), *defs.value);
}

void complete_task(const std::string& bytes) {
  worker::CompleteTaskRequest req;
  if (wire::decode(req, bytes)) return;
  auto outcome = api::to_outcome(req);
  if (!outcome.value) return;
  actors::attempt_info attempt{"charge", 2, "t-17", -1};
  auto ev = actors::outcome_event(attempt, req.worker_id(), *outcome.value,
                                  1'700'000'000'000);
  if (!ev.value) return;
  if (ev.value->ByteSizeLong() > 2 * actors::max_payload_bytes_limit)
    std::abort();
  (void)workflow::safe_dump(api::event_to_json(*ev.value));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0) return 0;
  std::string bytes{reinterpret_cast<const char*>(data) + 1, size - 1};
  if (data[0] % 2 == 0)
    register_worker(bytes);
  else
    complete_task(bytes);
  return 0;
}
