#include "src/bridges/caf/upstream.hpp"

#include <utility>

namespace cerebelum::caf_guard {

void upstream::set(std::uint64_t owner, opener fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  owner_ = owner;
  fn_ = std::move(fn);
}

void upstream::clear(std::uint64_t owner) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (owner_ != owner) return;
  owner_ = 0;
  fn_ = nullptr;
}

bool upstream::ready() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return static_cast<bool>(fn_);
}

int upstream::open(std::string& why) const {
  opener fn;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    fn = fn_;
  }
  // Outside the lock: the opener may take a while, and a gateway's exit
  // clears the slot concurrently.
  if (!fn) {
    why = "the worker gateway is not running (restarting)";
    return -1;
  }
  return fn(why);
}

} // namespace cerebelum::caf_guard
