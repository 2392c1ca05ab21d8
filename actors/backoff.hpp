#pragma once

// Capped exponential backoff with jitter, for everything in the actor tier
// that waits out a store outage or restarts after a crash. Pure: the caller
// arms the delay on its clock (ctx.clock().send_after).

#include <chrono>
#include <cstdint>
#include <string_view>

namespace cerebelum::actors {

struct backoff_policy {
  std::chrono::milliseconds first{50};
  std::chrono::milliseconds cap{5'000};
};

/// Waiting out a store that is away: 50 ms doubling to 5 s.
inline constexpr backoff_policy store_backoff{std::chrono::milliseconds{50},
                                              std::chrono::milliseconds{5'000}};
/// Restarting an execution's actor after its n-th crash: 100 ms doubling to
/// 5 s.
inline constexpr backoff_policy restart_backoff{
  std::chrono::milliseconds{100}, std::chrono::milliseconds{5'000}};

/// The delay before retry number `attempt` (0 = the first retry):
/// `first * 2^attempt`, at most `cap`, minus up to a fifth of it chosen from
/// `salt` and `attempt` (so that many waiters that failed together do not
/// retry together; deterministic, no random source).
std::chrono::milliseconds backoff_delay(const backoff_policy& p, int attempt,
                                        std::string_view salt);

} // namespace cerebelum::actors
