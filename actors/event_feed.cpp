#include "actors/event_feed.hpp"

#include <utility>

namespace cerebelum::actors {

event_feed::subscription::subscription(subscription&& other) noexcept
  : feed_(std::move(other.feed_)),
    id_(std::move(other.id_)),
    key_(std::exchange(other.key_, 0)) {
  // nop
}

event_feed::subscription&
event_feed::subscription::operator=(subscription&& other) noexcept {
  if (this != &other) {
    reset();
    feed_ = std::move(other.feed_);
    id_ = std::move(other.id_);
    key_ = std::exchange(other.key_, 0);
  }
  return *this;
}

event_feed::subscription::~subscription() {
  reset();
}

void event_feed::subscription::reset() {
  if (key_ == 0) return;
  if (auto feed = feed_.lock()) feed->unsubscribe(id_, key_);
  key_ = 0;
  feed_.reset();
}

event_feed::subscription event_feed::subscribe(const std::string& execution_id,
                                               listener l) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto key = ++next_key_;
  by_id_[execution_id].emplace(key, std::move(l));
  ++count_;
  return subscription{weak_from_this(), execution_id, key};
}

void event_feed::committed(const std::string& execution_id) {
  if (count_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_id_.find(execution_id);
  if (i == by_id_.end()) return;
  for (auto& [key, l] : i->second)
    l();
}

void event_feed::unsubscribe(const std::string& id, std::uint64_t key) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_id_.find(id);
  if (i == by_id_.end() || i->second.erase(key) == 0) return;
  --count_;
  if (i->second.empty()) by_id_.erase(i);
}

} // namespace cerebelum::actors
