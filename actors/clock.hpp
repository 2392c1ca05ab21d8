#pragma once

// The time of one node's engine: what "now" is for decisions, event stamps,
// index rows, leases and timers, and the delayed messages that act on it.
//
// Every actor of the engine reads the time and arms its delays through the
// clock of its `engine_context` (`ctx.clock()`), never through the wall
// clock or `delayed_send`. The node runs on `real_clock()`; a test hands the
// node a `manual_clock` (node_config::clock) and moves time itself:
//
// ```
//   manual_clock c{t0}
//   actor: ctx.clock().send_after(self, 10 s, tick)  -> pending (due t0+10s)
//   test:  c.advance(9'999 ms)   -> nothing delivered (pending() == 1)
//   test:  c.advance(1 ms)       -> tick delivered to the actor
// ```
//
// Not on this clock, on purpose: the deadlines of blocking calls made from
// threads outside the actor system (`engine_api::wait`, `node::stop`) and
// measurements of how long the machine took (`resurrection_time`). They
// bound how long a real thread blocks, whatever time the engine believes.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/message.hpp>
#include <caf/weak_intrusive_ptr.hpp>

namespace cerebelum::actors {

/// The time source and timer service of one node's engine.
class clock {
 public:
  virtual ~clock();

  /// Milliseconds since the epoch.
  virtual std::int64_t now_ms() const = 0;

  /// Delivers `msg` to `dest` (no sender) once `now_ms() >= at_ms`; at once
  /// when that moment has passed.
  virtual void
  send_at(caf::strong_actor_ptr dest, std::int64_t at_ms, caf::message msg)
    = 0;

  /// Delivers the message `xs...` to `dest` at `now_ms() + delay`.
  template <class Handle, class... Ts>
  void
  send_after(const Handle& dest, std::chrono::milliseconds delay, Ts&&... xs) {
    send_at(caf::actor_cast<caf::strong_actor_ptr>(dest),
            now_ms() + delay.count(),
            caf::make_message(std::forward<Ts>(xs)...));
  }
};

using clock_ptr = std::shared_ptr<clock>;

/// The wall clock (`system_clock`); delayed messages go through the CAF
/// actor clock of the receiver's actor system. Shared by every node.
clock_ptr real_clock();

/// A clock that moves only when a test tells it to. Thread-safe.
///
/// `advance` delivers what came due, earliest first (in the order they were
/// armed for one moment), from the calling thread; the receivers handle them
/// later, on their own threads. A message armed by such a receiver for a
/// moment already passed is delivered at once, so one `advance` over several
/// steps of a chain (a timer that arms the next one) reaches the end of it.
class manual_clock : public clock {
 public:
  /// 2023-11-14T22:13:20Z: ids and stamps look like real ones.
  static constexpr std::int64_t default_start_ms = 1'700'000'000'000;

  explicit manual_clock(std::int64_t start_ms = default_start_ms);

  std::int64_t now_ms() const override;

  void send_at(caf::strong_actor_ptr dest, std::int64_t at_ms,
               caf::message msg) override;

  /// Moves the time forward by `d` and delivers every message due by then.
  void advance(std::chrono::milliseconds d);

  /// Moves the time to the next due moment (if it is in the future) and
  /// delivers what is due then. Returns that moment, or none when nothing is
  /// pending.
  std::optional<std::int64_t> advance_to_next();

  /// Messages armed and not delivered yet.
  std::size_t pending() const;

  /// The earliest moment a pending message is due, or none.
  std::optional<std::int64_t> next_due() const;

  /// The moments of every pending message, earliest first (a test checks
  /// that something was armed for exactly the moment it expects).
  std::vector<std::int64_t> due_moments() const;

 private:
  struct timer {
    caf::weak_actor_ptr dest;
    caf::message msg;
  };

  /// Delivers, outside the lock, everything due by `now_`.
  void deliver_due();

  mutable std::mutex mtx_;
  std::int64_t now_;
  std::uint64_t seq_ = 0;
  /// (due, arming order) -> message.
  std::map<std::pair<std::int64_t, std::uint64_t>, timer> timers_;
};

} // namespace cerebelum::actors
