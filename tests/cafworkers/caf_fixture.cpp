#include "tests/cafworkers/caf_fixture.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace cerebelum::test {

using namespace std::chrono_literals;

caf_node::caf_node(std::vector<std::string> extra_args) {
  grpc_port = free_port();
  caf_port = free_port();
  std::vector<std::string> args{
    CEREBELUM_BIN,      "node",       "--data-dir",
    dir_.path.string(), "--listen",   "127.0.0.1:" + std::to_string(grpc_port),
    "--http",           "",           "--store",
    "sqlite",           "--caf-port", std::to_string(caf_port)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<child_process>(std::move(args));
  auto ready = proc_->wait_for_line("node ready", 30s);
  INFO(proc_->output());
  REQUIRE(ready);
}

std::pair<int, std::string> caf_node::cli(std::vector<std::string> args) {
  args.insert(args.begin(), {CEREBELUM_BIN, "--log-level", "warn", "--server",
                             "127.0.0.1:" + std::to_string(grpc_port)});
  // Keeps the node's pipe from filling.
  proc_->wait_for_line("\x01 never printed", 1ms);
  child_process run{args};
  auto code = run.wait_exit(60s);
  return {code ? *code : -1, run.output()};
}

nlohmann::json caf_node::wait_status(const std::string& id,
                                     const std::string& status,
                                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto [code, out] = cli({"show", id, "--json"});
    last = nlohmann::json::parse(out, nullptr, false);
    if (last.is_object() && last["status"] == status) return last;
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

nlohmann::json caf_node::history(const std::string& id) {
  auto [code, out] = cli({"show", id, "--history", "--json"});
  auto parsed = nlohmann::json::parse(out, nullptr, false);
  INFO(out);
  REQUIRE(code == 0);
  REQUIRE(parsed.is_object());
  return parsed["history"];
}

std::unique_ptr<child_process>
spawn_worker(caf_node& node, const std::string& id,
             std::vector<std::string> extra_args, bool with_workflow) {
  std::vector<std::string> args{CAF_WORKER_BIN, "--port",
                                std::to_string(node.caf_port), "--id", id};
  if (with_workflow)
    args.insert(args.end(), {"--workflow", CAF_WORKER_WORKFLOW});
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return std::make_unique<child_process>(std::move(args));
}

std::unique_ptr<child_process> start_worker(caf_node& node,
                                            const std::string& id) {
  auto proc = spawn_worker(node, id, {});
  auto registered = proc->wait_for_line("registered", 30s);
  INFO(proc->output());
  REQUIRE(registered);
  return proc;
}

} // namespace cerebelum::test
