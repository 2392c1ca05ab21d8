#include "actors/clock.hpp"

#include <caf/actor_clock.hpp>
#include <caf/actor_system.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message_id.hpp>

namespace cerebelum::actors {

clock::~clock() {
  // nop
}

namespace {

class wall_clock final : public clock {
 public:
  std::int64_t now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
  }

  void send_at(caf::strong_actor_ptr dest, std::int64_t at_ms,
               caf::message msg) override {
    if (!dest) return;
    // The delay is counted on CAF's steady clock, as `delayed_send` did: a
    // jump of the wall clock does not move a message already armed.
    auto delay
      = std::chrono::milliseconds{std::max<std::int64_t>(0, at_ms - now_ms())};
    auto& sys_clock = dest->home_system->clock();
    auto elem = caf::make_mailbox_element(nullptr, caf::make_message_id(), {},
                                          std::move(msg));
    sys_clock.schedule_message(sys_clock.now() + delay, std::move(dest),
                               std::move(elem));
  }
};

} // namespace

clock_ptr real_clock() {
  static clock_ptr instance = std::make_shared<wall_clock>();
  return instance;
}

manual_clock::manual_clock(std::int64_t start_ms) : now_(start_ms) {
  // nop
}

std::int64_t manual_clock::now_ms() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return now_;
}

void manual_clock::send_at(caf::strong_actor_ptr dest, std::int64_t at_ms,
                           caf::message msg) {
  if (!dest) return;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (at_ms > now_) {
      timers_.emplace(std::make_pair(at_ms, seq_++),
                      timer{caf::weak_actor_ptr{dest.get()}, std::move(msg)});
      return;
    }
  }
  dest->enqueue(nullptr, caf::make_message_id(), std::move(msg), nullptr);
}

void manual_clock::advance(std::chrono::milliseconds d) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    now_ += d.count();
  }
  deliver_due();
}

std::optional<std::int64_t> manual_clock::advance_to_next() {
  std::int64_t due = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (timers_.empty()) return std::nullopt;
    due = timers_.begin()->first.first;
    now_ = std::max(now_, due);
  }
  deliver_due();
  return due;
}

std::size_t manual_clock::pending() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return timers_.size();
}

std::optional<std::int64_t> manual_clock::next_due() const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first.first;
}

std::vector<std::int64_t> manual_clock::due_moments() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::int64_t> out;
  out.reserve(timers_.size());
  for (auto& [key, t] : timers_)
    out.push_back(key.first);
  return out;
}

void manual_clock::deliver_due() {
  std::vector<timer> due;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto end = timers_.upper_bound({now_, UINT64_MAX});
    for (auto i = timers_.begin(); i != end; ++i)
      due.push_back(std::move(i->second));
    timers_.erase(timers_.begin(), end);
  }
  // Receivers that quit meanwhile are skipped, as CAF drops a delayed
  // message to a dead actor.
  for (auto& t : due)
    if (auto dest = t.dest.lock())
      dest->enqueue(nullptr, caf::make_message_id(), std::move(t.msg), nullptr);
}

} // namespace cerebelum::actors
