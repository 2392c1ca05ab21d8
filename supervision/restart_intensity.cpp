#include "supervision/restart_intensity.hpp"

namespace cerebelum::supervision {

restart_intensity::restart_intensity(int intensity,
                                     std::chrono::milliseconds period,
                                     clock_function clock)
  : intensity_(intensity), period_(period), clock_(std::move(clock)) {
  // nop
}

bool restart_intensity::add_restart() {
  auto now_ts = now();
  auto threshold = now_ts - period_;
  // OTP keeps restarts R with R >= Now - Period (the window is inclusive).
  while (!restarts_.empty() && restarts_.back() < threshold)
    restarts_.pop_back();
  restarts_.push_front(now_ts);
  if (restarts_.size() <= static_cast<size_t>(intensity_)) return true;
  // Bound the memory: only intensity + 1 entries can ever matter.
  while (restarts_.size() > static_cast<size_t>(intensity_) + 1)
    restarts_.pop_back();
  return false;
}

restart_intensity::time_point restart_intensity::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

} // namespace cerebelum::supervision
