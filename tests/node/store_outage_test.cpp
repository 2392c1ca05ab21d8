// A real PostgreSQL server stopped for 40 s under a real node while 100
// executions' timers come due, then started again on the same port: every
// execution completes by itself, starts meanwhile are answered 503 with a
// retry hint, `cerebelum health` reports the outage, and the node's log
// holds a few lines, not thousands. (Issue 12: before, all of them ended
// `failed`, kind `crashed`, and the scheduler logged in a hot loop.)

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <httplib.h>

#include "tests/node/node_fixture.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// A throwaway PostgreSQL server of our own (we stop it; the suite's shared
/// one must stay up).
struct own_pg {
  /// Directly under the temporary directory: the server runs as the
  /// `postgres` user, which cannot enter a private temp_dir.
  std::filesystem::path dir
    = std::filesystem::temp_directory_path()
      / ("cerebelum-outage-pg-" + std::to_string(::getpid()));
  std::string conninfo;

  own_pg() {
    auto out = run_script({"start"});
    REQUIRE(out.code == 0);
    // The last line is the connection string.
    std::istringstream lines{out.output};
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("host=", 0) == 0) conninfo = line;
    REQUIRE_FALSE(conninfo.empty());
  }
  ~own_pg() {
    run_script({"stop"});
  }
  void stop_server() {
    REQUIRE(run_script({"stop-server"}).code == 0);
  }
  void start_server() {
    REQUIRE(run_script({"start-server"}).code == 0);
  }

 private:
  cli_result run_script(std::vector<std::string> args) {
    args.insert(args.begin(), CEREBELUM_PG_SCRIPT);
    args.push_back(dir.string());
    child_process proc{args};
    auto code = proc.wait_exit(120s);
    return {code ? *code : -1, proc.output()};
  }
};

std::size_t lines_of(const std::string& text) {
  std::size_t n = 0;
  for (char c : text)
    n += c == '\n' ? 1 : 0;
  return n;
}

} // namespace

TEST_CASE("a 40 s PostgreSQL outage is waited out: every execution completes, "
          "starts meanwhile are answered 503, the log stays short") {
  own_pg pg;
  node_process node{{}, pg.conninfo};
  httplib::Client http{"127.0.0.1", node.http_port};
  http.set_read_timeout(30, 0);
  constexpr int n = 100;
  for (int i = 0; i < n; ++i) {
    auto res
      = http.Post("/v1/workflows/nap/executions?id=nap-" + std::to_string(i),
                  json{{"n", i}}.dump(), "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 201);
  }
  node.process().drain();
  auto log_before = lines_of(node.process().output());
  // Every timer (3 s) comes due while the server is away.
  pg.stop_server();
  std::this_thread::sleep_for(5s);
  auto health = node.cli({"health", "--json"});
  CHECK(health.code == 3);
  CHECK(health.json()["store_available"] == false);
  auto start = http.Post("/v1/workflows/nap/executions?id=during",
                         json{{"n", 1}}.dump(), "application/json");
  REQUIRE(start);
  CHECK(start->status == 503);
  CHECK(start->get_header_value("Retry-After") == "1");
  CHECK(json::parse(start->body)["error"]["retry_after_ms"] == 1000);
  auto health_http = http.Get("/v1/health");
  REQUIRE(health_http);
  CHECK(health_http->status == 503);
  for (int i = 0; i < 35; ++i) {
    std::this_thread::sleep_for(1s);
    node.process().drain();
  }
  const auto& log = node.process().output();
  auto during = lines_of(log) - log_before;
  pg.start_server();
  auto t0 = std::chrono::steady_clock::now();
  auto completed = [&] {
    auto res = http.Get("/v1/executions?status=completed&page_size=1000");
    if (!res || res->status != 200) return std::size_t{0};
    return json::parse(res->body)["executions"].size();
  };
  while (completed() < n && std::chrono::steady_clock::now() - t0 < 60s) {
    std::this_thread::sleep_for(100ms);
    node.process().drain();
  }
  auto recovered_in = std::chrono::steady_clock::now() - t0;
  for (int i = 0; i < n; ++i) {
    auto id = "nap-" + std::to_string(i);
    auto res = http.Get("/v1/executions/" + id);
    REQUIRE(res);
    auto view = json::parse(res->body);
    INFO(id << ": " << view.dump());
    REQUIRE(view["status"] == "completed");
    CHECK(view["result"]["n"] == i + 1);
  }
  node.process().drain();
  if (const char* keep = std::getenv("CEREBELUM_KEEP_NODE_LOG")) {
    std::ofstream out{keep};
    out << log;
  }
  WARN("outage 40 s: " << during << " log lines during it; all " << n
                       << " executions completed "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(
                            recovered_in)
                            .count()
                       << " ms after the server was back");
  INFO(log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
  CHECK(during < 60);
  // The same start now succeeds, and the node reports a healthy store.
  auto again = http.Post("/v1/workflows/nap/executions?id=during",
                         json{{"n", 1}}.dump(), "application/json");
  REQUIRE(again);
  CHECK(again->status == 201);
  auto healthy = node.cli({"health", "--json"});
  CHECK(healthy.code == 0);
  CHECK(healthy.json()["outages"] == 1);
}
