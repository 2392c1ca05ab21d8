#include "supervision/supervisor_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message_view.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/skip.hpp>

#include "supervision/errc.hpp"

namespace cerebelum::supervision::detail {

namespace {

std::shared_ptr<spdlog::logger> supervision_logger() {
  if (auto named = spdlog::get("supervision")) return named;
  return spdlog::default_logger();
}

/// Answers an unknown request with `sec::unexpected_message` and logs it,
/// instead of CAF's printing to stderr.
caf::result<caf::message> drop_unexpected(caf::scheduled_actor* self,
                                          caf::message_view& x) {
  supervision_logger()->warn("supervisor {} dropped an unexpected message: {}",
                             self->id(), caf::to_string(x.content()));
  return caf::sec::unexpected_message;
}

} // namespace

supervisor_actor::supervisor_actor(caf::actor_config& cfg,
                                   supervisor_config sup_cfg)
  : caf::event_based_actor(cfg),
    name_(sup_cfg.name.empty() ? "supervisor" : std::move(sup_cfg.name)),
    strategy_(sup_cfg.flags.strategy),
    log_(supervision_logger()),
    intensity_(sup_cfg.flags.intensity, sup_cfg.flags.period,
               std::move(sup_cfg.flags.clock)) {
  if (simple()) {
    template_ = std::move(sup_cfg.children.front());
  } else {
    children_.reserve(sup_cfg.children.size());
    for (auto& spec : sup_cfg.children)
      children_.push_back(static_child{std::move(spec), {}, false});
  }
}

const char* supervisor_actor::name() const {
  return "cerebelum.supervisor";
}

caf::behavior supervisor_actor::make_behavior() {
  set_exit_handler([this](caf::exit_msg& x) {
    on_external_exit(x);
  });
  set_down_handler([this](caf::down_msg& x) {
    on_down(x);
  });
  attach_functor([this](const caf::error& reason) {
    on_abrupt_exit(reason);
  });
  if (simple()) {
    log_->info("supervisor {} started (simple_one_for_one, template {})", name_,
               template_.id);
    started_ = true;
    phase_ = phase::running;
    set_default_handler(drop_unexpected);
    return running_behavior();
  }
  // The first behavior must exist before start_initial may switch it.
  phase_ = phase::starting;
  set_default_handler(caf::skip);
  become(starting_behavior());
  start_initial(0);
  return caf::behavior{};
}

void supervisor_actor::enter(phase next) {
  if (phase_ == next) return;
  log_->trace("supervisor {}: phase {} -> {}", name_, static_cast<int>(phase_),
              static_cast<int>(next));
  phase_ = next;
  switch (next) {
    case phase::starting:
      set_default_handler(caf::skip);
      become(starting_behavior());
      break;
    case phase::stopping:
      set_default_handler(caf::skip);
      become(stopping_behavior());
      break;
    case phase::running:
      set_default_handler(drop_unexpected);
      become(running_behavior());
      drain_deferred();
      break;
  }
}

caf::behavior supervisor_actor::starting_behavior() {
  return {
    [this](await_started_atom) -> caf::result<void> {
      auto rp = make_response_promise();
      start_waiters_.push_back(rp);
      return rp;
    },
    [](stop_timer_atom, uint64_t) {
      // Stale timer of an earlier job.
    },
  };
}

caf::behavior supervisor_actor::stopping_behavior() {
  return {
    [this](await_started_atom) -> caf::result<void> {
      if (started_) return caf::unit;
      // The start failed and the started children are being stopped.
      auto rp = make_response_promise();
      start_waiters_.push_back(rp);
      return rp;
    },
    [this](stop_timer_atom, uint64_t generation) {
      on_stop_timeout(generation);
    },
  };
}

void supervisor_actor::on_down(caf::down_msg& x) {
  switch (phase_) {
    case phase::running: on_running_down(x); break;
    case phase::stopping: on_stopping_down(x); break;
    case phase::starting: {
      auto i = index_of(x.source);
      if (i >= 0 && i == awaiting_) {
        children_[static_cast<size_t>(i)].handle = nullptr;
        awaiting_ = -1;
        initial_start_failed(static_cast<size_t>(i), std::move(x.reason));
      } else if (i >= 0) {
        // OTP handles such exits after init: restart once running.
        deferred_.push_back(std::move(x));
      }
      break;
    }
  }
}

void supervisor_actor::on_running_down(caf::down_msg& x) {
  if (simple()) {
    auto id = x.source.id();
    auto i = dynamic_.find(id);
    if (i != dynamic_.end() && i->second.handle.address() == x.source) {
      dynamic_child_exited(id, x.reason);
      return;
    }
  } else if (auto i = index_of(x.source); i >= 0) {
    static_child_exited(static_cast<size_t>(i), x.reason);
  }
}

void supervisor_actor::on_external_exit(caf::exit_msg& x) {
  // Children are monitored, so an exit message comes from a user
  // (anon_send_exit), a dying parent or an actor linked to us: stop all
  // children in order, then exit with the same reason. A normal exit is
  // ignored, as CAF does for actors that do not trap exits.
  if (!x.reason || x.reason == caf::exit_reason::normal) return;
  log_->info("supervisor {} shutting down: {}", name_,
             system().render(x.reason));
  if (phase_ == phase::running) {
    shutdown(std::move(x.reason));
    return;
  }
  if (!exit_pending_) {
    exit_pending_ = true;
    pending_exit_ = std::move(x.reason);
  }
}

void supervisor_actor::on_abrupt_exit(const caf::error& reason) {
  // Runs when the actor terminates. After an orderly shutdown no child is
  // left; after a kill, the children die with the same reason (a link
  // would have done this, see the class comment).
  for (auto& child : children_)
    if (child.handle) send_exit(child.handle, reason);
  for (auto& entry : dynamic_)
    send_exit(entry.second.handle, reason);
}

void supervisor_actor::drain_deferred() {
  while (phase_ == phase::running && !deferred_.empty()) {
    auto x = std::move(deferred_.front());
    deferred_.pop_front();
    on_running_down(x);
  }
  if (phase_ == phase::running && exit_pending_) {
    exit_pending_ = false;
    shutdown(std::move(pending_exit_));
  }
}

supervisor_actor::static_child*
supervisor_actor::find_static(const std::string& id) {
  for (auto& child : children_)
    if (child.spec.id == id) return &child;
  return nullptr;
}

ptrdiff_t supervisor_actor::index_of(const caf::actor_addr& addr) const {
  // Static supervisors have few children: a linear scan beats hashing.
  for (size_t i = 0; i < children_.size(); ++i)
    if (children_[i].handle && children_[i].handle.address() == addr)
      return static_cast<ptrdiff_t>(i);
  return -1;
}

} // namespace cerebelum::supervision::detail
