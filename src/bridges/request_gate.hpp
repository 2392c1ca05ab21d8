#pragma once

// Admission of large requests. A request body is small on the wire but its
// parsed JSON can be ~35 times larger (a 1 MiB array of `{}` holds 350,000
// objects); 64 clients sending such bodies at once once drove a node to
// 4.9 GB. Requests over `large_request_bytes` therefore take one of a few
// slots for as long as they are handled; the others wait for a slot, and
// get `unavailable` when none frees up in time. Small requests never wait.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>

namespace cerebelum::api {

/// Requests with more bytes than this need a slot.
constexpr std::size_t large_request_bytes = 64 * 1024;

/// How many large requests are handled at once (per node, all front ends).
constexpr int large_request_slots = 4;

/// How long a large request waits for a slot before it is refused.
constexpr std::chrono::milliseconds large_request_wait{10'000};

class request_gate {
 public:
  /// Holds a slot (or nothing, for a small request) until destroyed.
  class ticket {
   public:
    ticket() = default;
    explicit ticket(request_gate* gate) : gate_(gate) {}
    ticket(ticket&& other) noexcept : gate_(other.gate_) {
      other.gate_ = nullptr;
    }
    ticket& operator=(ticket&&) = delete;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket();

   private:
    request_gate* gate_ = nullptr;
  };

  explicit request_gate(int slots) : free_(slots) {}

  /// Admits a request of `bytes`: at once when it is small, otherwise when
  /// a slot is free within `wait`; nothing when none freed up.
  [[nodiscard]] std::optional<ticket>
  admit(std::size_t bytes, std::chrono::milliseconds wait = large_request_wait);

  /// The node-wide gate shared by the HTTP and gRPC front ends.
  static request_gate& shared();

 private:
  void release();

  std::mutex mtx_;
  std::condition_variable cv_;
  int free_;
};

} // namespace cerebelum::api
