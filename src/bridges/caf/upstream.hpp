#pragma once

// How the guard reaches the worker gateway. CAF's BASP broker gets one end
// of a socket pair per worker connection (as a connection it accepted) and
// the guard relays on the other end: no listening socket stands behind the
// guard, so no local process can reach libcaf_io's BASP parser, or claim a
// connected worker's CAF node id, without passing the guard's checks.
//
// ```
//  worker --TCP/TLS--> guard --socketpair--> CAF (BASP broker: server side)
//  accept: upstream::open() -> the guard's end, or -1 (gateway restarting)
// ```
//
// The gateway's child spec installs its opener when it starts and removes
// it when that gateway exits (a restarted gateway's opener replaces it).

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace cerebelum::caf_guard {

/// The current way to the worker gateway. Thread-safe.
class upstream {
 public:
  /// Opens one connection to the gateway and returns the guard's end (a
  /// nonblocking, close-on-exec socket), or -1 with `why` set.
  using opener = std::function<int(std::string& why)>;

  /// Installs the opener of gateway `owner` (replacing any other).
  void set(std::uint64_t owner, opener fn);

  /// Removes the opener when `owner` installed the current one (a
  /// successor's stays).
  void clear(std::uint64_t owner);

  /// Whether an opener is installed.
  [[nodiscard]] bool ready() const;

  /// One connection to the gateway (see `opener`); -1 with `why` when no
  /// gateway is running.
  [[nodiscard]] int open(std::string& why) const;

 private:
  mutable std::mutex mtx_;
  std::uint64_t owner_ = 0;
  opener fn_;
};

using upstream_ptr = std::shared_ptr<upstream>;

} // namespace cerebelum::caf_guard
