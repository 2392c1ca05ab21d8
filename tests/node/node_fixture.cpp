#include "tests/node/node_fixture.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace cerebelum::test {

using namespace std::chrono_literals;

nlohmann::json cli_result::json() const {
  auto parsed = nlohmann::json::parse(output, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json{} : parsed;
}

cli_result run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), CEREBELUM_BIN);
  child_process proc{args};
  auto code = proc.wait_exit(60s);
  return {code ? *code : -1, proc.output()};
}

node_process::node_process(std::filesystem::path data_dir, std::string store,
                           std::filesystem::path workflows,
                           std::vector<std::string> extra) {
  if (workflows.empty()) workflows = CEREBELUM_WORKFLOWS;
  if (data_dir.empty()) {
    own_dir_ = std::make_unique<temp_dir>();
    data_dir = own_dir_->path;
  }
  data_dir_ = data_dir;
  grpc_port = free_port();
  http_port = free_port();
  std::vector<std::string> args{
    CEREBELUM_BIN, "node",
    "--data-dir",  data_dir_.string(),
    "--workflows", workflows.string(),
    "--listen",    "127.0.0.1:" + std::to_string(grpc_port),
    "--http",      "127.0.0.1:" + std::to_string(http_port),
    "--store",     store.empty() ? std::string{"sqlite"} : store};
  args.insert(args.end(), extra.begin(), extra.end());
  proc_ = std::make_unique<child_process>(std::move(args));
  auto ready = proc_->wait_for_line("node ready", 30s);
  INFO(proc_->output());
  REQUIRE(ready);
}

cli_result node_process::cli(std::vector<std::string> args) {
  args.insert(args.begin(), {"--log-level", "warn", "--server",
                             "127.0.0.1:" + std::to_string(grpc_port)});
  drain();
  return run_cli(std::move(args));
}

void node_process::drain() {
  proc_->wait_for_line("\x01 never printed", 1ms);
}

nlohmann::json node_process::wait_status(const std::string& id,
                                         const std::string& status,
                                         std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = cli({"show", id, "--json"}).json();
    if (last.is_object() && last["status"] == status) return last;
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

} // namespace cerebelum::test
