#include "actors/node.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <string>

#include "actors/data_dir_lock.hpp"
#include "actors/errc.hpp"
#include "supervision/messages.hpp"
#include "supervision/supervisor.hpp"

namespace cerebelum::actors {

namespace sv = supervision;

namespace {

using stop_flag = std::shared_ptr<std::atomic<bool>>;

sv::supervisor_config make_tree(const node_config& cfg) {
  sv::child_spec lock;
  lock.id = "data_dir_lock";
  lock.start = [dir = cfg.data_dir](caf::actor_system& sys,
                                    const caf::message&) {
    return spawn_data_dir_lock(sys, dir);
  };
  lock.restart = sv::restart_type::permanent;
  lock.shutdown = sv::shutdown_timeout(std::chrono::seconds{5});
  sv::supervisor_flags flags;
  flags.strategy = sv::restart_strategy::one_for_one;
  flags.intensity = 5;
  flags.period = std::chrono::seconds{10};
  return {"node_supervisor", flags, {std::move(lock)}};
}

/// Logs the tree below `sup`, depth first, one line per child.
void log_tree(caf::scoped_actor& self, const caf::actor& sup, int depth) {
  auto children = sv::which_children(self, sup,
                                     caf::duration{std::chrono::seconds{5}});
  if (!children) {
    spdlog::warn("cannot list the children of a supervisor: {}",
                 self->system().render(children.error()));
    return;
  }
  for (auto& child : *children) {
    bool is_sup = child.type == sv::child_type::supervisor;
    spdlog::info("  {:>{}}+-- {} ({}, {})", "", depth * 4, child.id,
                 is_sup ? "supervisor" : "worker",
                 child.status == sv::child_status::running ? "running"
                                                           : "not running");
    if (is_sup && child.child) log_tree(self, child.child, depth + 1);
  }
}

/// Watches the root and reports a termination that `stop` did not ask for.
caf::behavior root_watcher(caf::event_based_actor* self, caf::actor root,
                           stop_flag stopping, node::on_down_function on_down) {
  self->monitor(root);
  self->set_down_handler([=](caf::down_msg& msg) {
    if (!stopping->load()) {
      spdlog::critical("the node's supervision tree terminated: {}",
                       self->system().render(msg.reason));
      if (on_down) on_down(msg.reason);
    }
    self->quit();
  });
  return {[](caf::get_atom) {}};
}

} // namespace

void add_node_message_types(caf::actor_system_config& cfg) {
  sv::add_supervision_types(cfg);
  cfg.add_error_category(error_category, [](uint8_t code, caf::atom_value,
                                            const caf::message& ctx) {
    auto result = "node: " + to_string(static_cast<errc>(code));
    if (ctx.match_element<std::string>(0))
      result += " (" + ctx.get_as<std::string>(0) + ")";
    return result;
  });
}

node::node(caf::actor_system& sys, caf::actor root, caf::actor watcher,
           std::shared_ptr<std::atomic<bool>> stopping)
  : sys_(&sys),
    root_(std::move(root)),
    watcher_(std::move(watcher)),
    stopping_(std::move(stopping)) {
  // nop
}

caf::expected<node> node::start(caf::actor_system& sys, const node_config& cfg,
                                on_down_function on_down) {
  spdlog::info("starting node supervision tree (data dir {})",
               cfg.data_dir.string());
  auto root = sv::start_supervisor(sys, make_tree(cfg));
  if (!root) return std::move(root.error());
  auto stopping = std::make_shared<std::atomic<bool>>(false);
  auto watcher = sys.spawn(root_watcher, *root, stopping, std::move(on_down));
  caf::scoped_actor self{sys};
  spdlog::info("supervision tree:");
  spdlog::info("  node_supervisor (one_for_one)");
  log_tree(self, *root, 0);
  return node{sys, std::move(*root), std::move(watcher), std::move(stopping)};
}

bool node::stop(std::chrono::milliseconds timeout) {
  stopping_->store(true);
  caf::scoped_actor self{*sys_};
  self->monitor(root_);
  caf::anon_send_exit(root_, caf::exit_reason::user_shutdown);
  bool stopped = false;
  self->receive(
    [&](caf::down_msg&) {
      stopped = true;
    },
    caf::after(timeout) >> [] {});
  return stopped;
}

} // namespace cerebelum::actors
