#include "actors/node.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "actors/data_dir_lock.hpp"
#include "actors/engine_context.hpp"
#include "actors/errc.hpp"
#include "actors/execution.hpp"
#include "actors/execution_registry.hpp"
#include "actors/local_engine.hpp"
#include "actors/resurrector.hpp"
#include "actors/scheduler.hpp"
#include "actors/store_writer.hpp"
#include "actors/task_router.hpp"
#include "supervision/messages.hpp"
#include "supervision/supervisor.hpp"
#include "workflow/loader.hpp"

namespace cerebelum::actors {

namespace sv = supervision;

namespace {

using stop_flag = std::shared_ptr<std::atomic<bool>>;

sv::child_spec worker(std::string id, sv::start_function start,
                      sv::restart_type restart = sv::restart_type::permanent) {
  sv::child_spec spec;
  spec.id = std::move(id);
  spec.start = std::move(start);
  spec.restart = restart;
  spec.shutdown = sv::shutdown_timeout(std::chrono::seconds{5});
  return spec;
}

/// Wraps the start of a nested supervisor to remember its handle.
sv::child_spec remembered(sv::child_spec spec,
                          std::function<void(caf::actor)> remember) {
  auto inner = std::move(spec.start);
  spec.start = [inner, remember](caf::actor_system& sys,
                                 const caf::message& args) {
    auto res = inner(sys, args);
    if (res) remember(*res);
    return res;
  };
  return spec;
}

/// The router's options with the node's payload limit.
router_options router_with_limit(const node_config& cfg) {
  auto opts = cfg.tasks;
  opts.max_payload_bytes = std::min(cfg.max_payload_bytes,
                                    max_payload_bytes_limit);
  return opts;
}

/// The restart intensities of the tree follow the node's clock when a test
/// gave one; otherwise the supervisors keep their steady clock.
sv::clock_function intensity_clock(const node_config& cfg) {
  if (!cfg.clock) return {};
  return [c = cfg.clock] {
    return std::chrono::steady_clock::time_point{
      std::chrono::milliseconds{c->now_ms()}};
  };
}

sv::child_spec executions_sup(const context_ptr& ctx,
                              sv::clock_function clock) {
  // One bad execution must never take the node down: its own restart budget
  // marks it failed long before this intensity could be reached.
  sv::supervisor_flags flags{sv::restart_strategy::simple_one_for_one,
                             1'000'000, std::chrono::seconds{1},
                             std::move(clock)};
  auto tmpl = worker(
    "execution",
    [ctx](caf::actor_system& sys,
          const caf::message& args) -> caf::expected<caf::actor> {
      return spawn_execution(sys, ctx, args.get_as<std::string>(0));
    },
    sv::restart_type::transient);
  auto spec = sv::supervisor_spec("executions_sup",
                                  {"executions_sup", flags, {std::move(tmpl)}});
  return remembered(std::move(spec), [ctx](caf::actor x) {
    ctx->set_executions_sup(x);
  });
}

sv::supervisor_config make_tree(const node_config& cfg, const context_ptr& ctx,
                                std::shared_ptr<engine_api> api,
                                task_api_ptr tasks) {
  std::vector<sv::child_spec> children;
  children.push_back(
    worker("data_dir_lock",
           [dir = cfg.data_dir](caf::actor_system& sys, const caf::message&) {
             return spawn_data_dir_lock(sys, dir);
           }));
  children.push_back(worker(
    "store_writer",
    [ctx, store = cfg.store, dir = cfg.data_dir, check = cfg.store_check,
     wrap = cfg.wrap_store](caf::actor_system& sys, const caf::message&) {
      return spawn_store_writer(sys, ctx, store, dir, check, wrap);
    }));
  children.push_back(worker("scheduler",
                            [ctx](caf::actor_system& sys, const caf::message&)
                              -> caf::expected<caf::actor> {
                              auto x = spawn_scheduler(sys, ctx);
                              ctx->set_scheduler(x);
                              return x;
                            }));
  children.push_back(worker(
    "task_router",
    [ctx, opts = router_with_limit(cfg)](
      caf::actor_system& sys,
      const caf::message&) -> caf::expected<caf::actor> {
      auto x = caf::actor_cast<caf::actor>(spawn_task_router(sys, ctx, opts));
      ctx->set_task_router(x);
      return x;
    }));
  children.push_back(executions_sup(ctx, intensity_clock(cfg)));
  children.push_back(worker("execution_registry",
                            [ctx](caf::actor_system& sys, const caf::message&)
                              -> caf::expected<caf::actor> {
                              auto x = spawn_execution_registry(sys, ctx);
                              ctx->set_registry(x);
                              return x;
                            }));
  children.push_back(worker("wait_hub",
                            [ctx](caf::actor_system& sys, const caf::message&)
                              -> caf::expected<caf::actor> {
                              auto x = spawn_wait_hub(sys, ctx);
                              ctx->set_wait_hub(x);
                              return x;
                            }));
  children.push_back(worker(
    "resurrector",
    [ctx](caf::actor_system& sys,
          const caf::message&) -> caf::expected<caf::actor> {
      return spawn_resurrector(sys, ctx);
    },
    sv::restart_type::transient));
  std::vector<sv::child_spec> bridges;
  if (cfg.bridges) bridges = cfg.bridges(std::move(api), std::move(tasks));
  sv::supervisor_flags bridge_flags{sv::restart_strategy::one_for_one, 5,
                                    std::chrono::seconds{10},
                                    intensity_clock(cfg)};
  children.push_back(sv::supervisor_spec(
    "bridge_sup", {"bridge_sup", bridge_flags, std::move(bridges)}));
  sv::supervisor_flags flags;
  flags.strategy = sv::restart_strategy::one_for_one;
  flags.intensity = 5;
  flags.period = std::chrono::seconds{10};
  flags.clock = intensity_clock(cfg);
  return {"node_supervisor", flags, std::move(children)};
}

/// Loads every workflow file of `dir` into `ctx`; fails naming the first
/// file that does not validate (or that exceeds a limit: an alias bomb is
/// refused in milliseconds), and both files of a workflow name defined
/// twice (the later one used to win without a word).
caf::error load_workflows(const std::filesystem::path& dir,
                          engine_context& ctx) {
  if (dir.empty()) return caf::none;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    auto ext = entry.path().extension().string();
    if (entry.is_regular_file()
        && (ext == ".yaml" || ext == ".yml" || ext == ".json"))
      files.push_back(entry.path());
  }
  if (ec)
    return make_error(errc::invalid_argument, "cannot read workflows dir "
                                                + dir.string() + ": "
                                                + ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, std::filesystem::path> seen;
  for (auto& file : files) {
    auto def = workflow::load_file(file);
    if (!def) {
      auto diag = def.error().to_string();
      spdlog::error("workflow file {} is invalid: {}", file.string(), diag);
      return make_error(errc::invalid_argument,
                        "workflow file " + file.string() + ": " + diag);
    }
    if (auto [first, fresh] = seen.emplace(def->name, file); !fresh) {
      auto msg = "workflow '" + def->name + "' is defined twice: in "
                 + first->second.string() + " and in " + file.string();
      spdlog::error("{}", msg);
      return make_error(errc::invalid_argument, msg);
    }
    spdlog::info("loaded workflow {} (version {}, {}) from {}", def->name,
                 def->version, def->version_hash, file.string());
    ctx.add_definition(std::move(*def), file.string());
  }
  return caf::none;
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
  engine_options opts;
  opts.passivation_delay = cfg.passivation_delay;
  opts.restart_budget = cfg.restart_budget;
  opts.before_decide = cfg.before_decide;
  opts.clock = cfg.clock;
  opts.max_payload_bytes = std::min(cfg.max_payload_bytes,
                                    max_payload_bytes_limit);
  opts.store_limits = cfg.store_limits;
  opts.reoffers = cfg.reoffers;
  opts.writer = cfg.writer;
  opts.admission_fill = cfg.admission_fill;
  opts.admission_wait = cfg.admission_wait;
  auto ctx = std::make_shared<engine_context>(cfg.functions, std::move(opts),
                                              cfg.call_threads);
  if (auto err = load_workflows(cfg.workflows_dir, *ctx)) return err;
  for (const auto& def : cfg.definitions)
    ctx->add_definition(def, "builder");
  auto api = make_local_engine(sys, ctx);
  auto tasks = std::make_shared<const task_api>([ctx] {
    return caf::actor_cast<task_router_actor>(ctx->task_router());
  });
  auto root = sv::start_supervisor(sys, make_tree(cfg, ctx, api, tasks));
  if (!root) {
    ctx->close();
    return std::move(root.error());
  }
  auto stopping = std::make_shared<std::atomic<bool>>(false);
  auto watcher = sys.spawn(root_watcher, *root, stopping, std::move(on_down));
  node result{sys, *root, std::move(watcher), std::move(stopping)};
  result.api_ = std::move(api);
  result.ctx_ = ctx;
  result.tasks_ = std::move(tasks);
  // A fault the node cannot run with (a damaged index found by the
  // resurrector) stops the tree with that reason; the watcher reports it.
  auto fatal = ctx->on_fatal([addr = root->address()](const caf::error& why) {
    if (auto ptr = caf::actor_cast<caf::strong_actor_ptr>(addr))
      ptr->enqueue(nullptr, caf::make_message_id(),
                   caf::make_message(caf::exit_msg{addr, why}), nullptr);
  });
  if (fatal) {
    result.stop(std::chrono::seconds{10});
    return fatal;
  }
  caf::scoped_actor self{sys};
  spdlog::info("supervision tree:");
  spdlog::info("  node_supervisor (one_for_one)");
  log_tree(self, *root, 0);
  return result;
}

caf::actor node::registry() const {
  return ctx_ ? ctx_->registry() : caf::actor{};
}

caf::actor node::scheduler() const {
  return ctx_ ? ctx_->scheduler() : caf::actor{};
}

task_router_actor node::task_router() const {
  return ctx_ ? caf::actor_cast<task_router_actor>(ctx_->task_router())
              : task_router_actor{};
}

std::optional<std::chrono::milliseconds> node::resurrection_time() const {
  if (!ctx_) return std::nullopt;
  return ctx_->resurrection_time();
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
  if (ctx_) {
    // Normally done by the store writer as it stops; makes sure of it.
    ctx_->close();
    ctx_->set_registry(nullptr);
    ctx_->set_wait_hub(nullptr);
    ctx_->set_scheduler(nullptr);
    ctx_->set_executions_sup(nullptr);
    ctx_->set_task_router(nullptr);
  }
  return stopped;
}

} // namespace cerebelum::actors
