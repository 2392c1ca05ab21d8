// Integration tests of the `cerebelum node` process: real processes, real
// signals, real SIGKILL.

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/child_process.hpp"
#include "tests/support/scratch.hpp"

using cerebelum::test::child_process;
using cerebelum::test::free_port;
using cerebelum::test::temp_dir;
using namespace std::chrono_literals;

namespace {

constexpr auto ready_line = "node ready";

std::vector<std::string> node_args(const temp_dir& dir) {
  return {CEREBELUM_BIN, "node",
          "--data-dir",  dir.path.string(),
          "--listen",    "127.0.0.1:" + std::to_string(free_port()),
          "--http",      ""};
}

} // namespace

TEST_CASE("a node logs its supervision tree and stops cleanly on SIGTERM") {
  temp_dir dir;
  child_process node{node_args(dir)};
  REQUIRE(node.wait_for_line(ready_line, 20s));
  node.signal(SIGTERM);
  auto code = node.wait_exit(20s);
  INFO(node.output());
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(node.output().find("+-- data_dir_lock (worker, running)")
        != std::string::npos);
  CHECK(node.output().find("node stopped cleanly") != std::string::npos);
}

TEST_CASE("a node with --log-format json writes every line of its log as one "
          "JSON object") {
  temp_dir dir;
  auto args = node_args(dir);
  args.insert(args.begin() + 1, {"--log-format", "json"});
  child_process node{args};
  REQUIRE(node.wait_for_line(ready_line, 20s));
  node.signal(SIGTERM);
  REQUIRE(node.wait_exit(20s) == 0);
  INFO(node.output());
  std::istringstream lines{node.output()};
  std::string line;
  int count = 0;
  bool ready = false;
  bool stopped = false;
  while (std::getline(lines, line)) {
    INFO(line);
    auto obj = nlohmann::json::parse(line, nullptr, false);
    REQUIRE(obj.is_object());
    REQUIRE(obj["message"].is_string());
    CHECK(obj["logger"] == "cerebelum");
    CHECK(obj["thread"].is_number());
    // UTC, milliseconds: 2026-12-06T20:50:34.853Z
    REQUIRE(obj["time"].is_string());
    CHECK(obj["time"].get<std::string>().size() == 24);
    CHECK(obj["time"].get<std::string>().back() == 'Z');
    auto msg = obj["message"].get<std::string>();
    if (msg.find(ready_line) != std::string::npos) {
      ready = true;
      CHECK(obj["level"] == "info");
    }
    if (msg.find("node stopped cleanly") != std::string::npos) stopped = true;
    ++count;
  }
  CHECK(count > 3);
  CHECK(ready);
  CHECK(stopped);
}

TEST_CASE("the CLI refuses a --log-format other than text or json") {
  child_process cli{{CEREBELUM_BIN, "--log-format", "xml", "health"}};
  REQUIRE(cli.wait_exit(10s) == 2);
  CHECK(cli.output().find("--log-format: xml not in") != std::string::npos);
}

TEST_CASE("a node stops cleanly on SIGINT") {
  temp_dir dir;
  child_process node{node_args(dir)};
  REQUIRE(node.wait_for_line(ready_line, 20s));
  node.signal(SIGINT);
  auto code = node.wait_exit(20s);
  INFO(node.output());
  REQUIRE(code);
  CHECK(*code == 0);
}

TEST_CASE("a second node on the same data directory fails and names the "
          "holder") {
  temp_dir dir;
  child_process first{node_args(dir)};
  REQUIRE(first.wait_for_line(ready_line, 20s));
  child_process second{node_args(dir)};
  auto code = second.wait_exit(20s);
  INFO(second.output());
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(second.output().find("is in use by another node (pid "
                             + std::to_string(first.pid()) + ")")
        != std::string::npos);
  first.signal(SIGTERM);
  CHECK(first.wait_exit(20s) == 0);
}

TEST_CASE("a node killed with SIGKILL leaves no stale lock behind") {
  temp_dir dir;
  {
    child_process victim{node_args(dir)};
    REQUIRE(victim.wait_for_line(ready_line, 20s));
    victim.kill_hard();
  }
  child_process next{node_args(dir)};
  REQUIRE(next.wait_for_line(ready_line, 20s));
  next.signal(SIGTERM);
  CHECK(next.wait_exit(20s) == 0);
}

TEST_CASE("cerebelum --help lists the node command") {
  child_process help{{CEREBELUM_BIN, "--help"}};
  REQUIRE(help.wait_exit(10s) == 0);
  CHECK(help.output().find("node") != std::string::npos);
}

TEST_CASE("an unknown option is a usage error with exit code 2") {
  child_process bad{{CEREBELUM_BIN, "node", "--no-such-option"}};
  REQUIRE(bad.wait_exit(10s) == 2);
  CHECK(bad.output().find("--no-such-option") != std::string::npos);
}

TEST_CASE("a node raises its open files limit to the hard limit") {
  // Started with the usual soft limit (children inherit it), the node would
  // refuse accepts past ~1,000 clients.
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  if (saved.rlim_max <= 1024) {
    WARN("not checked: the hard limit is 1,024 or less here");
    return;
  }
  rlimit low = saved;
  low.rlim_cur = 1024;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  temp_dir dir;
  child_process node{node_args(dir)};
  ::setrlimit(RLIMIT_NOFILE, &saved);
  REQUIRE(node.wait_for_line(ready_line, 20s));
  std::ifstream limits{"/proc/" + std::to_string(node.pid()) + "/limits"};
  std::string line;
  std::string soft;
  while (std::getline(limits, line))
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream fields{line.substr(14)};
      fields >> soft;
    }
  INFO(node.output());
  CHECK(soft == std::to_string(saved.rlim_max));
  node.signal(SIGTERM);
  CHECK(node.wait_exit(20s));
}
