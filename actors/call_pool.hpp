#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cerebelum::actors {

/// A fixed pool of threads that runs native steps away from CAF's scheduler
/// threads, so that a slow function never stalls the actor system.
class call_pool {
 public:
  explicit call_pool(std::size_t threads);

  call_pool(const call_pool&) = delete;
  call_pool& operator=(const call_pool&) = delete;

  /// Stops (see `stop`).
  ~call_pool();

  /// Queues `job`; returns false once stopped.
  bool post(std::function<void()> job);

  /// Runs the queued jobs, then joins the threads. Idempotent.
  void stop();

 private:
  void run();

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace cerebelum::actors
