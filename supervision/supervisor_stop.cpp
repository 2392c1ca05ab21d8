// Stopping children: OTP's shutdown/2, terminate_children and
// terminate_dynamic_children, without blocking the actor.

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message_id.hpp>

#include "supervision/supervisor_actor.hpp"

namespace cerebelum::supervision::detail {

std::vector<supervisor_actor::stop_entry>
supervisor_actor::running_from(size_t first) const {
  // Stop order: reverse start order.
  std::vector<stop_entry> result;
  for (auto i = children_.size(); i > first; --i) {
    const auto& child = children_[i - 1];
    if (child.handle)
      result.emplace_back(child.handle, child.spec.effective_shutdown());
  }
  return result;
}

void supervisor_actor::stop_children(std::vector<stop_entry> order,
                                     std::function<void()> then) {
  job_ = stop_job{};
  job_.queue.assign(order.rbegin(), order.rend());
  job_.then = std::move(then);
  job_active_ = true;
  enter(phase::stopping);
  // Children whose exit is already deferred are stopped already.
  for (auto i = deferred_.begin(); i != deferred_.end();) {
    auto pos = std::find_if(job_.queue.begin(), job_.queue.end(),
                            [&](const stop_entry& entry) {
                              return entry.first.address() == i->source;
                            });
    if (pos == job_.queue.end()) {
      ++i;
      continue;
    }
    job_.queue.erase(pos);
    forget_stopped(i->source);
    i = deferred_.erase(i);
  }
  stop_next();
}

void supervisor_actor::stop_all_dynamic(std::function<void()> then) {
  // As OTP: all dynamic children stop at once (order undefined), one timer.
  job_ = stop_job{};
  job_.all_dynamic = true;
  job_.then = std::move(then);
  job_active_ = true;
  enter(phase::stopping);
  dynamic_retries_.clear();
  for (auto& x : deferred_)
    forget_stopped(x.source);
  deferred_.clear();
  if (dynamic_.empty()) {
    finish_job();
    return;
  }
  auto policy = template_.effective_shutdown();
  auto reason = policy.what == shutdown_policy::kind::brutal_kill
                  ? caf::exit_reason::kill
                  : caf::exit_reason::user_shutdown;
  // Enqueue without our execution unit: CAF then schedules each child
  // through the shared scheduler instead of this worker's local queue, where
  // thousands of children would be stolen one by one by the other workers.
  for (auto& entry : dynamic_)
    entry.second.handle->enqueue(
      ctrl(), caf::make_message_id(),
      caf::make_message(caf::exit_msg{address(), reason}), nullptr);
  ++stop_generation_;
  if (policy.what == shutdown_policy::kind::timeout)
    delayed_send(this, policy.timeout, stop_timer_atom_v, stop_generation_);
}

void supervisor_actor::stop_next() {
  if (job_.queue.empty()) {
    finish_job();
    return;
  }
  auto [child, policy] = std::move(job_.queue.back());
  job_.queue.pop_back();
  job_.current = child;
  stop_one(child, policy);
}

void supervisor_actor::stop_one(const caf::actor& child,
                                const shutdown_policy& policy) {
  ++stop_generation_;
  switch (policy.what) {
    case shutdown_policy::kind::brutal_kill:
      send_exit(child, caf::exit_reason::kill);
      break;
    case shutdown_policy::kind::timeout:
      send_exit(child, caf::exit_reason::user_shutdown);
      delayed_send(this, policy.timeout, stop_timer_atom_v, stop_generation_);
      break;
    case shutdown_policy::kind::infinity:
      send_exit(child, caf::exit_reason::user_shutdown);
      break;
  }
}

void supervisor_actor::on_stop_timeout(uint64_t generation) {
  if (generation != stop_generation_) return;
  if (job_.all_dynamic) {
    log_->warn("supervisor {}: {} children did not stop in time, killing",
               name_, dynamic_.size());
    for (auto& entry : dynamic_)
      send_exit(entry.second.handle, caf::exit_reason::kill);
  } else if (job_.current) {
    log_->warn("supervisor {}: a child did not stop in time, killing", name_);
    send_exit(job_.current, caf::exit_reason::kill);
  }
}

void supervisor_actor::on_stopping_down(caf::down_msg& x) {
  if (job_.all_dynamic) {
    auto i = dynamic_.find(x.source.id());
    if (i != dynamic_.end() && i->second.handle.address() == x.source) {
      dynamic_.erase(i);
      if (dynamic_.empty()) finish_job();
    }
    return;
  }
  if (job_.current && job_.current.address() == x.source) {
    forget_stopped(x.source);
    job_.current = nullptr;
    stop_next();
    return;
  }
  auto pos = std::find_if(job_.queue.begin(), job_.queue.end(),
                          [&](const stop_entry& entry) {
                            return entry.first.address() == x.source;
                          });
  if (pos != job_.queue.end()) {
    job_.queue.erase(pos);
    forget_stopped(x.source);
    return;
  }
  auto is_dynamic_child = simple() && dynamic_.count(x.source.id()) > 0;
  if (is_dynamic_child || index_of(x.source) >= 0)
    deferred_.push_back(std::move(x));
}

void supervisor_actor::forget_stopped(const caf::actor_addr& who) {
  if (simple()) {
    dynamic_.erase(who.id());
    return;
  }
  auto i = index_of(who);
  if (i < 0) return;
  auto& child = children_[static_cast<size_t>(i)];
  if (child.spec.restart == restart_type::temporary)
    children_.erase(children_.begin() + i);
  else
    child.handle = nullptr;
}

void supervisor_actor::finish_job() {
  job_active_ = false;
  auto then = std::move(job_.then);
  job_ = stop_job{};
  if (then) then();
  if (!quitting_ && !job_active_) enter(phase::running);
}

void supervisor_actor::shutdown(caf::error reason) {
  auto then = [this, reason] {
    terminate_self(reason);
  };
  if (simple())
    stop_all_dynamic(std::move(then));
  else
    stop_children(running_from(0), std::move(then));
}

void supervisor_actor::terminate_self(caf::error reason) {
  quitting_ = true;
  for (auto& rp : start_waiters_)
    rp.deliver(reason);
  start_waiters_.clear();
  log_->info("supervisor {} exited: {}", name_, system().render(reason));
  quit(std::move(reason));
}

} // namespace cerebelum::supervision::detail
