#pragma once

// Whether the node's store answers, as the engine's own calls find it.
//
// Every part of the engine that waits out a store outage (execution actors
// loading or appending, the scheduler reading timers, the resurrector
// paging) tells it what happened; it keeps the one picture that the health
// endpoint reports and writes the log of the outage:
//
// ```
//   available --first outage error--> unavailable   (logged once)
//        ^                               |  every 10 s while it lasts:
//        |                               |  "still unavailable after X s;
//        |                               |   N operations wait"
//        +-------first success-----------+  "available again after X s"
// ```
//
// Thread-safe; a success while available costs one atomic load.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "actors/clock.hpp"
#include "eventstore/result.hpp"

namespace cerebelum::actors {

/// Whether `err` means "the store is away for now; the same call may succeed
/// later" (connection lost, server restarting, commit outcome unknown), as
/// opposed to back-pressure (`overloaded`), a conflict or a fault.
bool is_outage(const eventstore::error& err);

class store_health {
 public:
  explicit store_health(const clock& clk) : clock_(clk) {}

  /// A store call failed with `err`; nothing happens unless `is_outage(err)`.
  void failed(const eventstore::error& err);
  /// A store call failed in an outage, as `what` says.
  void unavailable(const std::string& what);
  /// A store call succeeded.
  void succeeded();
  /// An operation starts / stops waiting for the store to come back.
  void wait_begin();
  void wait_end();

  struct report {
    bool available = true;
    /// Since when it is away (clock milliseconds); 0 when available.
    std::int64_t unavailable_since_ms = 0;
    /// The last outage error, when away.
    std::string last_error;
    /// Operations waiting for the store now.
    std::int64_t waiting = 0;
    /// Outages seen since the node started.
    std::uint64_t outages = 0;
  };
  report get() const;

  /// How often "still unavailable" is logged while an outage lasts.
  static constexpr std::int64_t report_every_ms = 10'000;

 private:
  const clock& clock_;
  std::atomic<bool> available_{true};
  std::atomic<std::int64_t> waiting_{0};
  mutable std::mutex mtx_;
  std::int64_t since_ms_ = 0;
  std::int64_t reported_ms_ = 0;
  std::string last_error_;
  std::uint64_t outages_ = 0;
};

} // namespace cerebelum::actors
