// A deploy that edits a workflow does not strand its executions: start
// executions of a sleeping workflow, stop the node, rename a step in the
// YAML, start the node again. Every old execution completes on the version
// it started on (read back from the store), one can be cancelled, new
// starts run the edited version, and `cerebelum workflows` shows both.

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>

#include "tests/node/node_fixture.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string nap_yaml(const std::string& sleep_step, const std::string& tag) {
  return "name: nap\n"
         "version: \""
         + tag
         + "\"\n"
           "steps:\n"
           "  - name: "
         + sleep_step
         + "\n"
           "    sleep: { expr: \"input.ms\" }\n"
           "  - name: done\n"
           "    set: { n: \"input.n\" }\n"
           "output:\n"
           "  n: \"steps.done.n\"\n"
           "  v: \"'"
         + tag + "'\"\n";
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out{path, std::ios::trunc};
  out << text;
  REQUIRE(out.good());
}

void stop(node_process& node) {
  node.process().signal(SIGTERM);
  auto code = node.process().wait_exit(30s);
  INFO(node.process().output());
  REQUIRE(code);
  CHECK(*code == 0);
}

} // namespace

TEST_CASE("after a workflow edit and a restart every old execution completes "
          "on its own version and can be cancelled") {
  temp_dir data;
  temp_dir flows;
  auto file = flows.path / "nap.yaml";
  write(file, nap_yaml("rest", "one"));
  constexpr int n = 5;
  auto id = [](int i) {
    return "nap-" + std::to_string(i);
  };
  {
    node_process node{data.path, {}, flows.path};
    for (int i = 0; i < n; ++i) {
      auto input = json{{"ms", 4000}, {"n", i}}.dump();
      REQUIRE(node.cli({"start", "nap", "--id", id(i), "--input", input}).code
              == 0);
    }
    for (int i = 0; i < n; ++i)
      REQUIRE(node.wait_status(id(i), "sleeping", 10s)["status"] == "sleeping");
    stop(node);
  }
  // The deploy: the sleep step is renamed, the output changes.
  write(file, nap_yaml("pause", "two"));
  node_process node{data.path, {}, flows.path};
  // One of them is cancelled by an operator.
  auto cancelled = node.cli(
    {"cancel", id(n - 1), "--by", "op", "--reason", "not needed", "--json"});
  INFO(cancelled.output);
  REQUIRE(cancelled.code == 0);
  CHECK(cancelled.json()["status"] == "cancelled");
  // The others wake and finish on the version they started on.
  for (int i = 0; i < n - 1; ++i) {
    auto done = node.wait_status(id(i), "completed", 30s);
    INFO(id(i) << ": " << done.dump());
    REQUIRE(done["status"] == "completed");
    CHECK(done["result"] == json{{"n", i}, {"v", "one"}});
    CHECK(done.value("stuck_reason", "").empty());
  }
  auto stuck = node.cli({"list", "--stuck", "--json"});
  REQUIRE(stuck.code == 0);
  CHECK(stuck.json().value("executions", json::array()).empty());
  // A new start runs the edited file.
  REQUIRE(node
            .cli({"start", "nap", "--id", "nap-new", "--wait", "--input",
                  json{{"ms", 10}, {"n", 7}}.dump(), "--json"})
            .code
          == 0);
  auto fresh = node.cli({"show", "nap-new", "--json"}).json();
  CHECK(fresh["result"] == json{{"n", 7}, {"v", "two"}});
  // Both versions are listed: the old one stored, the new one latest.
  auto listed = node.cli({"workflows", "--json"});
  INFO(listed.output);
  REQUIRE(listed.code == 0);
  int versions = 0;
  std::string old_version;
  auto all = listed.json();
  for (auto& wf : all["workflows"]) {
    if (wf["name"] != "nap") continue;
    ++versions;
    bool latest = wf.value("latest", false);
    CHECK(wf.value("stored", false));
    if (latest) {
      CHECK(wf.value("loaded", false));
      CHECK(wf["version"] == fresh["workflow_version"]);
    } else {
      CHECK_FALSE(wf.value("loaded", false));
      old_version = wf["version"].get<std::string>();
    }
  }
  CHECK(versions == 2);
  // A start may name the old version.
  REQUIRE_FALSE(old_version.empty());
  REQUIRE(
    node
      .cli({"start", "nap", "--id", "nap-pinned", "--version", old_version,
            "--wait", "--input", json{{"ms", 10}, {"n", 8}}.dump()})
      .code
    == 0);
  auto pinned = node.cli({"show", "nap-pinned", "--json"}).json();
  CHECK(pinned["result"] == json{{"n", 8}, {"v", "one"}});
  auto table = node.cli({"workflows"});
  CHECK(table.code == 0);
  CHECK(table.output.find("latest") != std::string::npos);
  auto help = run_cli({"workflows", "--help"});
  CHECK(help.code == 0);
  CHECK(help.output.find("open executions") != std::string::npos);
}
