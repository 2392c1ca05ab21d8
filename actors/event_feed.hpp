#pragma once

// The live feed of committed events: the store writer tells it of every
// append that committed; it tells the followers of that execution (GET
// /v1/executions/{id}/events?follow=true), who read what is new from the
// store. Nobody following costs one atomic read per commit.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cerebelum::actors {

class event_feed : public std::enable_shared_from_this<event_feed> {
 public:
  /// Told that the execution has new committed events; runs on the
  /// writer's thread, under the feed's lock: keep it to a message send.
  using listener = std::function<void()>;

  /// Listens while it lives (move-only).
  class subscription {
   public:
    subscription() = default;
    subscription(std::weak_ptr<event_feed> feed, std::string id,
                 std::uint64_t key)
      : feed_(std::move(feed)), id_(std::move(id)), key_(key) {
      // nop
    }
    subscription(subscription&& other) noexcept;
    subscription& operator=(subscription&& other) noexcept;
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription();

    /// Stops listening (idempotent).
    void reset();

   private:
    std::weak_ptr<event_feed> feed_;
    std::string id_;
    std::uint64_t key_ = 0;
  };

  /// Calls `l` after each commit that appends events to `execution_id`.
  [[nodiscard]] subscription subscribe(const std::string& execution_id,
                                       listener l);

  /// A commit appended events to `execution_id` (the writer's thread).
  void committed(const std::string& execution_id);

  /// Subscriptions open now.
  [[nodiscard]] std::size_t followers() const {
    return count_.load();
  }

 private:
  void unsubscribe(const std::string& id, std::uint64_t key);

  mutable std::mutex mtx_;
  std::unordered_map<std::string, std::map<std::uint64_t, listener>> by_id_;
  std::uint64_t next_key_ = 0;
  std::atomic<std::size_t> count_{0};
};

} // namespace cerebelum::actors
