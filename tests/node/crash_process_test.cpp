// Crash tests: `kill -9` a node while executions are sleeping, awaiting
// approval and mid-flight, restart it on the same data directory, and check
// that every execution finishes with the right result and that no step result
// is recorded twice.

#include <catch2/catch.hpp>

#include <csignal>
#include <map>

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

} // namespace

TEST_CASE("after kill -9, sleeping, waiting and running executions finish "
          "once") {
  temp_dir dir;
  {
    node_process node{dir.path};
    REQUIRE(
      node
        .cli({"start", "order", "--id", "wait", "--input", order("wait", 1500)})
        .code
      == 0);
    REQUIRE(node.wait_status("wait", "awaiting_approval", 30s)["status"]
            == "awaiting_approval");
    REQUIRE(node
              .cli({"start", "order", "--id", "sleep", "--input",
                    order("sleep", 2000)})
              .code
            == 0);
    REQUIRE(node.wait_status("sleep", "sleeping", 10s)["status"] == "sleeping");
    for (int i = 0; i < 5; ++i) {
      auto id = "run-" + std::to_string(i);
      REQUIRE(
        node.cli({"start", "order", "--id", id, "--input", order(id, 10)}).code
        == 0);
    }
    node.process().kill_hard();
  }
  node_process node{dir.path};
  CHECK(node.cli({"approve", "wait", "--by", "after-crash"}).code == 0);
  REQUIRE(node.wait_status("sleep", "awaiting_approval", 30s)["status"]
          == "awaiting_approval");
  CHECK(node.cli({"approve", "sleep", "--by", "after-crash"}).code == 0);
  std::vector<std::string> ids{"wait", "sleep"};
  for (int i = 0; i < 5; ++i)
    ids.push_back("run-" + std::to_string(i));
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
