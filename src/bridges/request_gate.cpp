#include "src/bridges/request_gate.hpp"

#include <malloc.h>

namespace cerebelum::api {

request_gate::ticket::~ticket() {
  if (gate_ != nullptr) gate_->release();
}

std::optional<request_gate::ticket>
request_gate::admit(std::size_t bytes, std::chrono::milliseconds wait) {
  if (bytes <= large_request_bytes) return ticket{};
  std::unique_lock<std::mutex> guard{mtx_};
  if (!cv_.wait_for(guard, wait, [this] {
        return free_ > 0;
      }))
    return std::nullopt;
  --free_;
  return ticket{this};
}

void request_gate::release() {
  // The request's parsed JSON is freed by now, but glibc keeps freed memory
  // in the arena of the thread that used it (up to 16 arenas here): without
  // a trim, a burst of large requests leaves the node at its peak size.
  ::malloc_trim(0);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ++free_;
  }
  cv_.notify_one();
}

request_gate& request_gate::shared() {
  static request_gate gate{large_request_slots};
  return gate;
}

} // namespace cerebelum::api
