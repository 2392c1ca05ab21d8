#include "eventstore/group_writer.hpp"

#include <future>
#include <limits>
#include <string>

#include <spdlog/spdlog.h>

namespace cerebelum::eventstore {

group_writer::group_writer(std::shared_ptr<event_store> store,
                           writer_options opts)
  : store_(std::move(store)), opts_(opts) {
  if (opts_.max_group_size == 0) opts_.max_group_size = 1;
  if (opts_.max_queued_requests == 0) opts_.max_queued_requests = 1;
  thread_ = std::thread{[this] {
    run();
  }};
}

group_writer::~group_writer() {
  close();
}

submit_status group_writer::submit(append_request req, callback on_done) {
  return enqueue(std::move(req), std::move(on_done), true);
}

submit_status group_writer::try_submit(append_request req, callback on_done) {
  return enqueue(std::move(req), std::move(on_done), false);
}

append_result group_writer::append_and_wait(append_request req) {
  std::promise<append_result> promise;
  auto fut = promise.get_future();
  auto st = submit(std::move(req), [&promise](append_result res) {
    promise.set_value(std::move(res));
  });
  if (st == submit_status::closed)
    return make_error(errc::closed, "the group writer is closed");
  return fut.get();
}

bool group_writer::has_room(std::size_t bytes) const noexcept {
  if (queue_.empty()) return true;
  return queue_.size() < opts_.max_queued_requests
         && queued_bytes_ + bytes <= opts_.max_queued_bytes;
}

submit_status group_writer::enqueue(append_request req, callback on_done,
                                    bool block) {
  auto bytes = req.byte_size();
  std::unique_lock lock{mtx_};
  if (block)
    not_full_.wait(lock, [&] {
      return closing_ || has_room(bytes);
    });
  if (closing_) return submit_status::closed;
  if (!has_room(bytes)) return submit_status::overloaded;
  queued_bytes_ += bytes;
  queue_.push_back(item{std::move(req), std::move(on_done), bytes,
                        std::chrono::steady_clock::now()});
  // Wake the writer for the first request, or once a lingering writer has
  // what it waits for; not once per request.
  bool wake = queue_.size() == 1 || queue_.size() >= linger_target_;
  lock.unlock();
  if (wake) not_empty_.notify_one();
  return submit_status::accepted;
}

void group_writer::close() {
  {
    std::lock_guard guard{mtx_};
    closing_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
    thread_.join();
}

double group_writer::fill() const {
  std::lock_guard lock{mtx_};
  auto by_count = static_cast<double>(queue_.size())
                  / static_cast<double>(opts_.max_queued_requests);
  auto by_bytes = opts_.max_queued_bytes == 0
                    ? 0.0
                    : static_cast<double>(queued_bytes_)
                        / static_cast<double>(opts_.max_queued_bytes);
  return std::max(by_count, by_bytes);
}

std::chrono::nanoseconds group_writer::oldest_wait() const {
  std::lock_guard lock{mtx_};
  std::optional<std::chrono::steady_clock::time_point> oldest
    = committing_since_;
  if (!queue_.empty() && (!oldest || queue_.front().queued_at < *oldest))
    oldest = queue_.front().queued_at;
  if (!oldest) return std::chrono::nanoseconds{0};
  return std::chrono::steady_clock::now() - *oldest;
}

writer_stats group_writer::stats() const {
  std::lock_guard guard{mtx_};
  return stats_;
}

void group_writer::run() {
  std::vector<item> group;
  for (;;) {
    {
      std::unique_lock lock{mtx_};
      not_empty_.wait(lock, [&] {
        return closing_ || !queue_.empty();
      });
      linger(lock);
      if (queue_.empty()) return; // closing and drained
      auto n = std::min(queue_.size(), opts_.max_group_size);
      last_group_size_ = n;
      group.clear();
      group.reserve(n);
      committing_since_ = queue_.front().queued_at;
      for (std::size_t i = 0; i < n; ++i) {
        queued_bytes_ -= queue_.front().bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    not_full_.notify_all();
    commit_group(group);
    std::lock_guard guard{mtx_};
    committing_since_.reset();
  }
}

void group_writer::linger(std::unique_lock<std::mutex>& lock) {
  // The callers of the last group resubmit right after their callbacks; a
  // short wait for them keeps groups large, which amortizes each commit's
  // fsync. It never delays an acknowledgement, only the next group's start.
  auto target = std::min(last_group_size_, opts_.max_group_size);
  if (opts_.max_linger.count() == 0 || closing_ || queue_.size() >= target)
    return;
  linger_target_ = target;
  not_empty_.wait_for(lock, opts_.max_linger, [&] {
    return closing_ || queue_.size() >= target;
  });
  linger_target_ = std::numeric_limits<std::size_t>::max();
}

void group_writer::commit_group(std::vector<item>& group) {
  std::vector<append_request> reqs;
  reqs.reserve(group.size());
  for (auto& it : group)
    reqs.push_back(std::move(it.req));
  std::vector<append_result> results;
  auto began = std::chrono::steady_clock::now();
  try {
    results = store_->append_batch(reqs);
  } catch (const std::exception& e) {
    // Stores catch their own exceptions; this guards the writer thread
    // against one that does not. The outcome of such a batch is unknown.
    results.assign(reqs.size(),
                   append_result{make_error(
                     errc::storage_error,
                     std::string{"store threw: "} + e.what(), true, true)});
  }
  for (std::size_t i = 0; i < group.size(); ++i)
    group[i].req = std::move(reqs[i]);
  if (results.size() != group.size())
    results.assign(group.size(),
                   append_result{make_error(errc::storage_error,
                                            "store returned a wrong number of "
                                            "results for a group")});
  if (opts_.on_group)
    opts_.on_group(group.size(), std::chrono::steady_clock::now() - began);
  if (opts_.verify_in_doubt) verify(group, results);
  {
    std::lock_guard guard{mtx_};
    stats_.groups += 1;
    stats_.appends += group.size();
    stats_.largest_group = std::max<std::uint64_t>(stats_.largest_group,
                                                   group.size());
  }
  if (opts_.on_committed)
    for (std::size_t i = 0; i < group.size(); ++i)
      if (results[i]) opts_.on_committed(group[i].req);
  for (std::size_t i = 0; i < group.size(); ++i) {
    try {
      group[i].on_done(std::move(results[i]));
    } catch (const std::exception& e) {
      spdlog::error("eventstore: append callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("eventstore: append callback threw");
    }
  }
}

namespace {

/// What the store holds of one in-doubt append.
enum class presence { all, none, unknown };

presence check_presence(event_store& store, const append_request& req) {
  if (req.events.empty())
    return presence::unknown; // an index-only change leaves no trace to find
  std::size_t matched = 0;
  auto res = store.read(
    req.execution_id, req.expected_next_seq, [&](const stored_event& ev) {
      const auto& want = req.events[matched];
      if (ev.seq != req.expected_next_seq + static_cast<std::int64_t>(matched)
          || ev.type != want.type || ev.payload != want.payload) {
        return false;
      }
      return ++matched < req.events.size();
    });
  if (!res) return presence::unknown;
  if (matched == req.events.size()) return presence::all;
  // Nothing, or someone else's events, at our positions: ours did not commit
  // (appends are atomic, so a prefix of ours cannot be there alone).
  return matched == 0 ? presence::none : presence::unknown;
}

} // namespace

void group_writer::verify(std::vector<item>& group,
                          std::vector<append_result>& results) {
  auto deadline = std::chrono::steady_clock::now() + opts_.verify_timeout;
  auto delay = std::chrono::milliseconds{50};
  for (;;) {
    bool pending = false;
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (results[i].ok() || !results[i].err().possibly_committed) continue;
      switch (check_presence(*store_, group[i].req)) {
        case presence::all: {
          const auto& req = group[i].req;
          results[i]
            = append_ack{req.expected_next_seq,
                         req.expected_next_seq
                           + static_cast<std::int64_t>(req.events.size())};
          std::lock_guard guard{mtx_};
          ++stats_.in_doubt_verified;
          break;
        }
        case presence::none: {
          auto err = std::move(results[i]).err();
          err.possibly_committed = false;
          err.retryable = true;
          err.message += " (verified: the append is not in the store)";
          results[i] = std::move(err);
          std::lock_guard guard{mtx_};
          ++stats_.in_doubt_verified;
          break;
        }
        case presence::unknown:
          pending = pending || !group[i].req.events.empty();
          break;
      }
    }
    if (!pending || std::chrono::steady_clock::now() + delay > deadline) return;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds{1000});
  }
}

} // namespace cerebelum::eventstore
