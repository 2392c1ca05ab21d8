#pragma once

// Waiting for the event itself instead of sleeping and hoping: a test that
// needs "the waiter has subscribed" or "the server accepts appends again"
// polls that condition, bounded by a deadline, and fails (returns false)
// when the deadline passes.

#include <chrono>
#include <thread>

namespace cerebelum::test {

/// How long `eventually` waits by default: long enough for a loaded CI
/// machine, short enough to fail a test that would hang.
inline constexpr std::chrono::milliseconds eventually_timeout{20'000};

/// Polls `pred` (about every millisecond) until it returns true or `timeout`
/// has passed; returns whether it held. `pred` runs at least once.
template <class Pred>
[[nodiscard]] bool eventually(Pred&& pred, std::chrono::milliseconds timeout
                                           = eventually_timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
}

} // namespace cerebelum::test
