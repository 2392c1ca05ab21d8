#include "src/cli/node_command.hpp"

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <system_error>
#include <unistd.h>

#include "actors/node.hpp"

namespace cerebelum::cli {

namespace {

/// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread; threads started
/// later (CAF's workers) inherit the mask, so only `wait_for_stop_signal` sees
/// them.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1); // the supervision tree terminated on its own
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_for_stop_signal(const sigset_t& set) {
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
    // EINTR: keep waiting.
  }
  return sig;
}

} // namespace

void add_node_options(CLI::App& cmd, node_options& opts) {
  cmd
    .add_option("--data-dir", opts.data_dir,
                "Directory of the embedded store and the node's files")
    ->capture_default_str();
  cmd
    .add_option("--shutdown-timeout", opts.shutdown_timeout_s,
                "Seconds to wait for a graceful stop")
    ->check(CLI::PositiveNumber)
    ->capture_default_str();
}

int run_node(const node_options& opts) {
  std::error_code ec;
  std::filesystem::create_directories(opts.data_dir, ec);
  if (ec) {
    spdlog::error("cannot create data directory '{}': {}", opts.data_dir,
                  ec.message());
    return 1;
  }
  auto signals = block_stop_signals();
  caf::actor_system_config cfg;
  actors::add_node_message_types(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  actors::node_config ncfg;
  ncfg.data_dir = opts.data_dir;
  auto node = actors::node::start(sys, ncfg, [](const caf::error&) {
    // Wake the main thread: the tree is gone, the node cannot serve.
    ::kill(::getpid(), SIGUSR1);
  });
  if (!node) {
    spdlog::error("node failed to start: {}", sys.render(node.error()));
    return 1;
  }
  spdlog::info("node ready (data dir {}); SIGINT or SIGTERM stops it",
               opts.data_dir);
  auto sig = wait_for_stop_signal(signals);
  if (sig == SIGUSR1) {
    spdlog::critical("the supervision tree terminated on its own; exiting");
    return 1;
  }
  spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  if (!node->stop(std::chrono::seconds{opts.shutdown_timeout_s})) {
    spdlog::error("supervision tree did not stop within {} s",
                  opts.shutdown_timeout_s);
    return 1;
  }
  spdlog::info("node stopped cleanly");
  return 0;
}

} // namespace cerebelum::cli
