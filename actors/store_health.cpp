#include "actors/store_health.hpp"

#include <spdlog/spdlog.h>

namespace cerebelum::actors {

bool is_outage(const eventstore::error& err) {
  using eventstore::errc;
  if (!err.retryable) return false;
  return err.code != errc::overloaded && err.code != errc::conflict;
}

namespace {

double seconds(std::int64_t ms) {
  return static_cast<double>(ms) / 1000.0;
}

} // namespace

void store_health::failed(const eventstore::error& err) {
  if (is_outage(err)) unavailable(eventstore::to_string(err));
}

void store_health::unavailable(const std::string& what) {
  auto now = clock_.now_ms();
  std::lock_guard<std::mutex> guard{mtx_};
  last_error_ = what;
  if (available_.load()) {
    available_.store(false);
    since_ms_ = now;
    reported_ms_ = now;
    ++outages_;
    spdlog::error("store unavailable: {}; executions, timers and starts wait "
                  "and retry with backoff (up to 5 s) until it is back",
                  last_error_);
    return;
  }
  if (now - reported_ms_ >= report_every_ms) {
    reported_ms_ = now;
    spdlog::warn("store still unavailable after {:.1f} s; {} operations wait; "
                 "last error: {}",
                 seconds(now - since_ms_), waiting_.load(), last_error_);
  }
}

void store_health::succeeded() {
  if (available_.load(std::memory_order_relaxed)) return;
  auto now = clock_.now_ms();
  std::lock_guard<std::mutex> guard{mtx_};
  if (available_.load()) return;
  available_.store(true);
  spdlog::info("store available again after {:.1f} s; {} operations resume",
               seconds(now - since_ms_), waiting_.load());
  since_ms_ = 0;
  last_error_.clear();
}

void store_health::wait_begin() {
  ++waiting_;
}

void store_health::wait_end() {
  --waiting_;
}

store_health::report store_health::get() const {
  std::lock_guard<std::mutex> guard{mtx_};
  report r;
  r.available = available_.load();
  r.unavailable_since_ms = r.available ? 0 : since_ms_;
  r.last_error = r.available ? std::string{} : last_error_;
  r.waiting = waiting_.load();
  r.outages = outages_;
  return r;
}

} // namespace cerebelum::actors
