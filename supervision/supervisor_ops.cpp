// The supervisor's request handlers (OTP's handle_call clauses).

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>

#include "supervision/errc.hpp"
#include "supervision/supervisor_actor.hpp"

namespace cerebelum::supervision::detail {

caf::behavior supervisor_actor::running_behavior() {
  return {
    [this](start_child_atom, child_spec& spec) {
      return op_start_child(spec);
    },
    [this](start_child_atom, caf::message& args) {
      return op_start_dynamic(args);
    },
    [this](terminate_child_atom, const std::string& id) {
      return op_terminate_child(id);
    },
    [this](terminate_child_atom, const caf::actor& child) {
      return op_terminate_dynamic(child);
    },
    [this](restart_child_atom, const std::string& id) {
      return op_restart_child(id);
    },
    [this](delete_child_atom, const std::string& id) {
      return op_delete_child(id);
    },
    [this](which_children_atom) {
      return op_which_children();
    },
    [this](count_children_atom) {
      return op_count_children();
    },
    [](await_started_atom) {
      // Already started.
    },
    [this](try_again_atom, const std::string& id) {
      on_try_again(id);
    },
    [this](try_again_atom) {
      if (dynamic_retries_.empty()) return;
      auto args = std::move(dynamic_retries_.front());
      dynamic_retries_.pop_front();
      restart_dynamic(std::move(args));
    },
    [](stop_timer_atom, uint64_t) {
      // Stale timer of a finished job.
    },
  };
}

caf::result<caf::actor> supervisor_actor::op_start_child(child_spec& spec) {
  if (simple()) return make_error(errc::simple_one_for_one, name_);
  if (auto err = validate(spec)) return err;
  if (auto existing = find_static(spec.id))
    return make_error(existing->handle ? errc::already_started
                                       : errc::already_present,
                      spec.id);
  static_child child{std::move(spec), {}, false};
  if (auto err = start_static(child)) return start_failure(child.spec.id, err);
  auto handle = child.handle;
  if (!handle && child.spec.restart == restart_type::temporary)
    return handle; // OTP does not keep an ignored temporary child
  log_->info("supervisor {}: started child {}", name_, child.spec.id);
  children_.push_back(std::move(child));
  return handle;
}

caf::result<caf::actor> supervisor_actor::op_start_dynamic(caf::message& args) {
  if (!simple()) return make_error(errc::not_simple_one_for_one, name_);
  auto res = start_dynamic(std::move(args));
  if (!res) return start_failure(template_.id, res.error());
  return std::move(*res);
}

caf::result<void> supervisor_actor::op_terminate_child(const std::string& id) {
  if (simple()) return make_error(errc::simple_one_for_one, name_);
  auto child = find_static(id);
  if (child == nullptr) return make_error(errc::not_found, id);
  if (!child->handle) {
    child->restarting = false; // a pending restart is cancelled
    return caf::unit;
  }
  log_->info("supervisor {}: terminating child {}", name_, id);
  auto rp = make_response_promise();
  stop_children({{child->handle, child->spec.effective_shutdown()}},
                [rp]() mutable {
                  rp.deliver(caf::unit);
                });
  return rp;
}

caf::result<void>
supervisor_actor::op_terminate_dynamic(const caf::actor& child) {
  if (!simple()) return make_error(errc::not_simple_one_for_one, name_);
  auto i = child ? dynamic_.find(child->id()) : dynamic_.end();
  if (i == dynamic_.end() || i->second.handle != child)
    return make_error(errc::not_found, template_.id);
  auto rp = make_response_promise();
  stop_children({{child, template_.effective_shutdown()}}, [rp]() mutable {
    rp.deliver(caf::unit);
  });
  return rp;
}

caf::result<caf::actor>
supervisor_actor::op_restart_child(const std::string& id) {
  if (simple()) return make_error(errc::simple_one_for_one, name_);
  auto child = find_static(id);
  if (child == nullptr) return make_error(errc::not_found, id);
  if (child->restarting) return make_error(errc::restarting, id);
  if (child->handle) return make_error(errc::running, id);
  if (auto err = start_static(*child)) return start_failure(id, err);
  log_->info("supervisor {}: restarted child {} on request", name_, id);
  return child->handle;
}

caf::result<void> supervisor_actor::op_delete_child(const std::string& id) {
  if (simple()) return make_error(errc::simple_one_for_one, name_);
  auto child = find_static(id);
  if (child == nullptr) return make_error(errc::not_found, id);
  if (child->restarting) return make_error(errc::restarting, id);
  if (child->handle) return make_error(errc::running, id);
  children_.erase(children_.begin() + (child - children_.data()));
  return caf::unit;
}

std::vector<child_info> supervisor_actor::op_which_children() const {
  std::vector<child_info> result;
  if (simple()) {
    result.reserve(dynamic_.size() + dynamic_retries_.size());
    for (auto& entry : dynamic_)
      result.push_back(child_info{template_.id, entry.second.handle,
                                  child_status::running, template_.type});
    for (size_t i = 0; i < dynamic_retries_.size(); ++i)
      result.push_back(child_info{template_.id, caf::actor{},
                                  child_status::restarting, template_.type});
    return result;
  }
  result.reserve(children_.size());
  for (auto& child : children_) {
    auto status = child.handle       ? child_status::running
                  : child.restarting ? child_status::restarting
                                     : child_status::undefined;
    result.push_back(
      child_info{child.spec.id, child.handle, status, child.spec.type});
  }
  return result;
}

child_counts supervisor_actor::op_count_children() const {
  child_counts result;
  if (simple()) {
    auto total = dynamic_.size() + dynamic_retries_.size();
    result.specs = 1;
    result.active = dynamic_.size();
    if (template_.type == child_type::supervisor)
      result.supervisors = total;
    else
      result.workers = total;
    return result;
  }
  result.specs = children_.size();
  for (auto& child : children_) {
    if (child.handle) ++result.active;
    if (child.spec.type == child_type::supervisor)
      ++result.supervisors;
    else
      ++result.workers;
  }
  return result;
}

void supervisor_actor::on_try_again(const std::string& id) {
  for (size_t i = 0; i < children_.size(); ++i)
    if (children_[i].spec.id == id) {
      if (children_[i].restarting && !children_[i].handle) restart_static(i);
      return;
    }
}

} // namespace cerebelum::supervision::detail
