#pragma once

#include <chrono>
#include <deque>

#include "supervision/child_spec.hpp"

namespace cerebelum::supervision {

/// Sliding-window restart counter, as OTP's `add_restart`: a restart is
/// recorded at "now", restarts older than `now - period` are forgotten, and
/// more than `intensity` remaining restarts means the supervisor gives up.
class restart_intensity {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  restart_intensity(int intensity, std::chrono::milliseconds period,
                    clock_function clock);

  /// Records one restart; returns false when the intensity is exceeded.
  [[nodiscard]] bool add_restart();

  /// Number of restarts currently inside the window.
  size_t size() const noexcept {
    return restarts_.size();
  }

 private:
  time_point now() const;

  int intensity_;
  std::chrono::milliseconds period_;
  clock_function clock_;
  /// Newest first, at most intensity + 1 entries.
  std::deque<time_point> restarts_;
};

} // namespace cerebelum::supervision
