#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "eventstore/event_store.hpp"

namespace cerebelum::eventstore {

/// Options of a `group_writer`.
struct writer_options {
  /// Queue bound in requests; `submit` blocks and `try_submit` reports
  /// `overloaded` beyond it.
  std::size_t max_queued_requests = 16'384;
  /// Queue bound in bytes (see `append_request::byte_size`). A single request
  /// larger than the bound is admitted only into an empty queue.
  std::size_t max_queued_bytes = 256 * 1024 * 1024;
  /// Most requests in one transaction.
  std::size_t max_group_size = 4'096;
  /// Longest wait, after a group, for as many requests as that group had
  /// (the same callers coming back) before the next group starts; 0 starts
  /// it with whatever is queued. Bounds the added latency; never delays an
  /// acknowledgement.
  std::chrono::microseconds max_linger{1'000};
  /// When a group's commit outcome is unknown, read the store back (after a
  /// reconnect) to find out whether each append is there before answering.
  bool verify_in_doubt = true;
  /// How long the writer keeps trying to verify an in-doubt group.
  std::chrono::milliseconds verify_timeout{10'000};
  /// Told, on the writer thread, of each group's transaction: how many
  /// appends it held and how long the store took (metrics). Must be cheap.
  std::function<void(std::size_t group_size, std::chrono::nanoseconds took)>
    on_group;
  /// Told, on the writer thread, of each append that committed, before its
  /// callback runs (live feeds of an execution's events). Must be cheap.
  std::function<void(const append_request&)> on_committed;
};

/// Outcome of handing a request to the writer.
enum class submit_status : std::uint8_t {
  /// Queued; the callback will run exactly once.
  accepted,
  /// The queue is full (`try_submit` only); the callback will not run.
  overloaded,
  /// The writer is closed; the callback will not run.
  closed,
};

/// Counters of a writer, for tests and benchmarks.
struct writer_stats {
  std::uint64_t groups = 0;
  std::uint64_t appends = 0;
  std::uint64_t largest_group = 0;
  std::uint64_t in_doubt_verified = 0;
};

/// The group-commit writer: gathers appends submitted concurrently from many
/// threads into one store transaction per group and acknowledges each append
/// only after that transaction committed.
///
/// ```
///  submit() --+                      writer thread
///  submit() --+--> bounded queue --> linger <= max_linger for the last
///  submit() --+    (back-pressure)   group's callers, then take all queued
///                                    (<= max_group_size)
///                                --> store.append_batch(group)  [1 txn]
///                                --> verify in-doubt results
///                                --> run each on_done(result)
/// ```
///
/// Per-append failures (conflict, invalid request) fail only that append. A
/// database failure fails the group; each error says whether the append
/// possibly committed. While the writer commits one group the next one
/// accumulates, so groups grow with load; a lone caller never waits for a
/// batch window.
class group_writer {
 public:
  /// Receives the result of one append, on the writer thread. Must not block
  /// for long: it delays the next group.
  using callback = std::function<void(append_result)>;

  explicit group_writer(std::shared_ptr<event_store> store,
                        writer_options opts = {});

  group_writer(const group_writer&) = delete;
  group_writer& operator=(const group_writer&) = delete;

  /// Closes the writer (see `close`).
  ~group_writer();

  /// Queues `req`; blocks while the queue is full. `on_done` runs on the
  /// writer thread iff this returns `accepted`.
  [[nodiscard]] submit_status submit(append_request req, callback on_done);

  /// Queues `req` unless the queue is full. Never blocks: actor threads use
  /// this and handle `overloaded`.
  [[nodiscard]] submit_status try_submit(append_request req, callback on_done);

  /// Submits and waits for the result (convenience for non-actor callers).
  append_result append_and_wait(append_request req);

  /// Stops accepting requests, commits everything already queued, runs its
  /// callbacks and joins the writer thread. Idempotent.
  void close();

  /// Current counters.
  writer_stats stats() const;

  /// How full the queue is: the larger of queued requests and queued bytes
  /// as a fraction of their bounds (0 empty, 1 full). Admission control
  /// reads it.
  double fill() const;

  /// How long the oldest append not yet acknowledged has waited: queued, or
  /// in the group being committed (0 when there is none). Admission control
  /// reads it: it is the wait a new append would join.
  std::chrono::nanoseconds oldest_wait() const;

 private:
  struct item {
    append_request req;
    callback on_done;
    std::size_t bytes;
    std::chrono::steady_clock::time_point queued_at;
  };

  submit_status enqueue(append_request req, callback on_done, bool block);

  bool has_room(std::size_t bytes) const noexcept;

  /// Waits up to `max_linger` for the queue to reach the last group's size.
  void linger(std::unique_lock<std::mutex>& lock);

  void run();

  void commit_group(std::vector<item>& group);

  void verify(std::vector<item>& group, std::vector<append_result>& results);

  std::shared_ptr<event_store> store_;
  writer_options opts_;
  mutable std::mutex mtx_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<item> queue_;
  std::size_t queued_bytes_ = 0;
  /// When the oldest append of the group being committed was queued (none:
  /// no group in commit).
  std::optional<std::chrono::steady_clock::time_point> committing_since_;
  bool closing_ = false;
  std::size_t last_group_size_ = 0;
  std::size_t linger_target_ = std::numeric_limits<std::size_t>::max();
  writer_stats stats_;
  std::thread thread_;
};

} // namespace cerebelum::eventstore
