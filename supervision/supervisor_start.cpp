// Starting and restarting children (OTP's start_children, do_restart,
// restart/2 and try_again_restart).

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/sec.hpp>

#include "supervision/errc.hpp"
#include "supervision/supervisor_actor.hpp"

namespace cerebelum::supervision::detail {

caf::expected<caf::actor>
supervisor_actor::call_start(const child_spec& spec, const caf::message& args) {
  // A throwing start function is a failed start, never a dead supervisor.
  try {
    return spec.start(system(), args);
  } catch (const std::exception& ex) {
    return caf::make_error(caf::sec::runtime_error, std::string{ex.what()});
  } catch (...) {
    return caf::make_error(caf::sec::runtime_error,
                           std::string{"unknown exception"});
  }
}

caf::error supervisor_actor::start_failure(const std::string& id,
                                           const caf::error& reason) {
  return make_error(errc::failed_to_start_child,
                    "child '" + id + "': " + system().render(reason));
}

caf::error supervisor_actor::start_static(static_child& child) {
  auto res = call_start(child.spec, caf::message{});
  if (!res) return std::move(res.error());
  child.restarting = false;
  child.handle = std::move(*res);
  if (child.handle) monitor(child.handle);
  return caf::none;
}

caf::expected<caf::actor> supervisor_actor::start_dynamic(caf::message args) {
  auto res = call_start(template_, args);
  if (!res || !*res) return res;
  monitor(*res);
  if (template_.restart == restart_type::temporary)
    args = caf::message{}; // never restarted: do not keep the arguments
  dynamic_.emplace((*res)->id(), dynamic_child{*res, std::move(args)});
  log_->debug("supervisor {}: started child {} ({})", name_, template_.id,
              (*res)->id());
  return res;
}

void supervisor_actor::start_initial(size_t first) {
  for (size_t i = first; i < children_.size(); ++i) {
    auto& child = children_[i];
    if (auto err = start_static(child)) {
      initial_start_failed(i, std::move(err));
      return;
    }
    if (!child.handle) {
      log_->info("supervisor {}: child {} ignored its start", name_,
                 child.spec.id);
      if (child.spec.restart == restart_type::temporary) {
        children_.erase(children_.begin() + static_cast<ptrdiff_t>(i));
        --i;
      }
      continue;
    }
    log_->info("supervisor {}: started child {}", name_, child.spec.id);
    if (child.spec.type == child_type::supervisor) {
      await_child_start(i);
      return;
    }
  }
  log_->info("supervisor {} started ({}, {} children)", name_,
             to_string(strategy_), children_.size());
  started_ = true;
  for (auto& rp : start_waiters_)
    rp.deliver(caf::unit);
  start_waiters_.clear();
  enter(phase::running);
}

void supervisor_actor::await_child_start(size_t index) {
  // A nested supervisor answers once all of its children are started, like
  // OTP's synchronous start_link of a child supervisor.
  auto i = static_cast<ptrdiff_t>(index);
  awaiting_ = i;
  request(children_[index].handle, caf::infinite, await_started_atom_v)
    .then(
      [this, i] {
        if (awaiting_ != i) return;
        awaiting_ = -1;
        start_initial(static_cast<size_t>(i) + 1);
      },
      [this, i](caf::error& err) {
        // A child that died before answering: its down message carries
        // the reason and ends the wait (see on_down).
        if (awaiting_ != i || err == caf::sec::request_receiver_down) return;
        awaiting_ = -1;
        // An actor that does not speak the protocol is started as it is.
        if (err == caf::sec::unexpected_message) {
          start_initial(static_cast<size_t>(i) + 1);
          return;
        }
        initial_start_failed(static_cast<size_t>(i), std::move(err));
      });
}

void supervisor_actor::initial_start_failed(size_t index, caf::error reason) {
  auto err = start_failure(children_[index].spec.id, reason);
  log_->error("supervisor {}: {}; stopping the started children", name_,
              system().render(err));
  stop_children(running_from(0), [this, err] {
    terminate_self(err);
  });
}

void supervisor_actor::static_child_exited(size_t index,
                                           const caf::error& reason) {
  auto& child = children_[index];
  child.handle = nullptr;
  auto normal = is_normal_exit(reason);
  auto what = system().render(reason);
  switch (child.spec.restart) {
    case restart_type::permanent:
      log_->error("supervisor {}: child {} terminated ({}), restarting", name_,
                  child.spec.id, what);
      restart_static(index);
      break;
    case restart_type::transient:
      if (normal) {
        log_->info("supervisor {}: transient child {} exited normally ({})",
                   name_, child.spec.id, what);
        break;
      }
      log_->error("supervisor {}: child {} terminated ({}), restarting", name_,
                  child.spec.id, what);
      restart_static(index);
      break;
    case restart_type::temporary:
      log_->info("supervisor {}: temporary child {} exited ({}), removed",
                 name_, child.spec.id, what);
      children_.erase(children_.begin() + static_cast<ptrdiff_t>(index));
      break;
  }
}

void supervisor_actor::dynamic_child_exited(caf::actor_id id,
                                            const caf::error& reason) {
  auto i = dynamic_.find(id);
  auto args = std::move(i->second.args);
  dynamic_.erase(i);
  auto restart = template_.restart == restart_type::permanent
                 || (template_.restart == restart_type::transient
                     && !is_normal_exit(reason));
  if (!restart) {
    log_->debug("supervisor {}: child {} ({}) exited: {}", name_, template_.id,
                id, system().render(reason));
    return;
  }
  log_->error("supervisor {}: child {} ({}) terminated ({}), restarting", name_,
              template_.id, id, system().render(reason));
  restart_dynamic(std::move(args));
}

void supervisor_actor::restart_static(size_t index) {
  auto id = children_[index].spec.id;
  if (!intensity_.add_restart()) {
    give_up(id);
    return;
  }
  switch (strategy_) {
    case restart_strategy::one_for_one: start_without_process(index, id); break;
    case restart_strategy::one_for_all:
      stop_children(running_from(0), [this, id] {
        start_without_process(0, id);
      });
      break;
    case restart_strategy::rest_for_one:
      stop_children(running_from(index + 1), [this, id] {
        for (size_t i = 0; i < children_.size(); ++i)
          if (children_[i].spec.id == id) {
            start_without_process(i, id);
            return;
          }
      });
      break;
    case restart_strategy::simple_one_for_one: break; // not static
  }
}

void supervisor_actor::start_without_process(size_t first,
                                             const std::string& cause) {
  // one_for_one restarts only `first`; the other strategies restart every
  // child from `first` on that has no process, in start order.
  auto last = strategy_ == restart_strategy::one_for_one ? first + 1
                                                         : children_.size();
  for (size_t i = first; i < last && i < children_.size(); ++i) {
    auto& child = children_[i];
    if (child.handle) continue;
    if (auto err = start_static(child)) {
      log_->error("supervisor {}: restarting child {} failed: {}", name_,
                  child.spec.id, system().render(err));
      child.restarting = true;
      send(this, try_again_atom_v, child.spec.id);
      return;
    }
    log_->warn("supervisor {}: restarted child {} (after {} exited)", name_,
               child.spec.id, cause);
  }
}

void supervisor_actor::restart_dynamic(caf::message args) {
  if (!intensity_.add_restart()) {
    give_up(template_.id);
    return;
  }
  auto res = start_dynamic(args);
  if (!res) {
    log_->error("supervisor {}: restarting a child {} failed: {}", name_,
                template_.id, system().render(res.error()));
    dynamic_retries_.push_back(std::move(args));
    send(this, try_again_atom_v);
    return;
  }
  log_->warn("supervisor {}: restarted a child {}", name_, template_.id);
}

void supervisor_actor::give_up(const std::string& child_id) {
  log_->error("supervisor {} gave up: reached max restart intensity after "
              "child {} terminated; stopping all children",
              name_, child_id);
  shutdown(make_error(errc::reached_max_restart_intensity, name_));
}

} // namespace cerebelum::supervision::detail
