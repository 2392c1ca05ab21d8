// Crash tests: `kill -9` a node while executions are sleeping, awaiting
// approval and mid-flight, restart it on the same data directory, and check
// that every execution finishes with the right result and that no step result
// is recorded twice.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <map>

#include <unistd.h>

#include "tests/node/node_fixture.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string order(const std::string& id, int amount) {
  return json{{"order_id", id},
              {"amount", amount},
              {"items", {{{"sku", "a"}, {"qty", 1}}}}}
    .dump();
}

/// Counts step_completed events per step name.
std::map<std::string, int> completions(node_process& node,
                                       const std::string& id) {
  std::map<std::string, int> result;
  auto hist = node.cli({"show", id, "--history", "--json"}).json();
  for (auto& ev : hist["history"])
    if (ev["type"] == "step_completed") ++result[ev["step"]];
  return result;
}

/// Kills a node with executions sleeping, awaiting approval and running,
/// restarts it on the same data directory and store, and checks that each
/// finishes once. Ids start with `prefix` (a shared PostgreSQL database
/// outlives one test run).
void crash_and_recover(const std::string& store, const std::string& prefix) {
  temp_dir dir;
  auto wait_id = prefix + "wait";
  auto sleep_id = prefix + "sleep";
  {
    node_process node{dir.path, store};
    REQUIRE(node
              .cli({"start", "order", "--id", wait_id, "--input",
                    order(wait_id, 1500)})
              .code
            == 0);
    REQUIRE(node.wait_status(wait_id, "awaiting_approval", 30s)["status"]
            == "awaiting_approval");
    REQUIRE(node
              .cli({"start", "order", "--id", sleep_id, "--input",
                    order(sleep_id, 2000)})
              .code
            == 0);
    REQUIRE(node.wait_status(sleep_id, "sleeping", 10s)["status"]
            == "sleeping");
    for (int i = 0; i < 5; ++i) {
      auto id = prefix + "run-" + std::to_string(i);
      REQUIRE(
        node.cli({"start", "order", "--id", id, "--input", order(id, 10)}).code
        == 0);
    }
    node.process().kill_hard();
  }
  node_process node{dir.path, store};
  CHECK(node.cli({"approve", wait_id, "--by", "after-crash"}).code == 0);
  REQUIRE(node.wait_status(sleep_id, "awaiting_approval", 30s)["status"]
          == "awaiting_approval");
  CHECK(node.cli({"approve", sleep_id, "--by", "after-crash"}).code == 0);
  std::vector<std::string> ids{wait_id, sleep_id};
  for (int i = 0; i < 5; ++i)
    ids.push_back(prefix + "run-" + std::to_string(i));
  for (auto& id : ids) {
    INFO(id);
    auto done = node.wait_status(id, "completed", 30s);
    REQUIRE(done["status"] == "completed");
    CHECK(done["result"]["shipment"]["shipment_id"] == "ship-" + id);
    for (auto& [step, count] : completions(node, id)) {
      INFO(step);
      CHECK(count == 1);
    }
  }
}

} // namespace

TEST_CASE("after kill -9, sleeping, waiting and running executions finish "
          "once") {
  crash_and_recover("", "");
}

TEST_CASE("after kill -9 on PostgreSQL, sleeping, waiting and running "
          "executions finish once") {
  const char* pg = std::getenv("CEREBELUM_TEST_PG");
  INFO("CEREBELUM_TEST_PG is not set: run the tests with ./cerebelum.sh test, "
       "which starts a throwaway PostgreSQL");
  REQUIRE(pg != nullptr);
  REQUIRE(*pg != '\0');
  crash_and_recover(pg, "pg" + std::to_string(::getpid()) + "-"
                          + std::to_string(std::time(nullptr)) + "-");
}
