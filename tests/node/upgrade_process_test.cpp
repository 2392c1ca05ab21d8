// `cerebelum check-upgrade FILE [--migrate]` against a real node: executions
// sleeping in the second step of a workflow, checked against (and moved to)
// edited copies of its file.

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

#include "tests/node/node_fixture.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// prepare (set) -> `sleeper` (sleep `nap`) -> done (set) [-> `extra`].
std::string nap_yaml(const std::string& sleeper, const std::string& extra,
                     const std::string& nap = "10m") {
  std::string out = "name: nap\n"
                    "steps:\n"
                    "  - name: prepare\n"
                    "    set: { n: \"input.n\" }\n"
                    "  - name: "
                    + sleeper + "\n    sleep: " + nap
                    + "\n"
                      "  - name: done\n"
                      "    set: { n: \"steps.prepare.n\" }\n";
  if (!extra.empty())
    out += "  - name: " + extra + "\n    log: \"after ${steps.done.n}\"\n";
  return out;
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out{path, std::ios::trunc};
  out << text;
  REQUIRE(out.good());
}

} // namespace

TEST_CASE("check-upgrade names the first diverging event of a renamed step "
          "and accepts a step added later") {
  temp_dir flows;
  temp_dir edits;
  write(flows.path / "nap.yaml", nap_yaml("rest", ""));
  node_process node{{}, {}, flows.path};
  for (int i = 0; i < 2; ++i) {
    auto id = "nap-" + std::to_string(i);
    REQUIRE(
      node.cli({"start", "nap", "--id", id, "--input", json{{"n", i}}.dump()})
        .code
      == 0);
    REQUIRE(node.wait_status(id, "sleeping", 10s)["status"] == "sleeping");
  }

  SECTION("renaming the step the executions sleep in is incompatible") {
    write(edits.path / "nap.yaml", nap_yaml("pause", ""));
    auto res = node.cli(
      {"check-upgrade", (edits.path / "nap.yaml").string(), "--json"});
    INFO(res.output);
    CHECK(res.code == 4);
    auto out = res.json();
    REQUIRE(out["executions"].size() == 2);
    CHECK(out["incompatible"] == 2);
    for (auto& e : out["executions"]) {
      CHECK(e["compatible"] == false);
      CHECK(e["seq"] == 3);
      CHECK(e["event_type"] == "step_scheduled");
      CHECK(e["step"] == "rest");
      CHECK(e["reason"]
            == "step 'rest' is not in the new definition (renamed or "
               "removed)");
    }
    auto table
      = node.cli({"check-upgrade", (edits.path / "nap.yaml").string()});
    INFO(table.output);
    CHECK(table.code == 4);
    CHECK(table.output.find("seq 3 step_scheduled 'rest': step 'rest' is not "
                            "in the new definition")
          != std::string::npos);
    CHECK(table.output.find("2 open execution(s), 0 compatible, 2 "
                            "incompatible")
          != std::string::npos);
  }

  SECTION("adding a step after the sleep is compatible") {
    write(edits.path / "nap.yaml", nap_yaml("rest", "extra"));
    auto res = node.cli({"check-upgrade", (edits.path / "nap.yaml").string()});
    INFO(res.output);
    CHECK(res.code == 0);
    CHECK(res.output.find("2 open execution(s), 2 compatible, 0 incompatible")
          != std::string::npos);
  }

  SECTION("a bad file is refused naming the problem") {
    write(edits.path / "nap.yaml", "name: nap\nsteps:\n  - name: a\n");
    auto res = node.cli({"check-upgrade", (edits.path / "nap.yaml").string()});
    INFO(res.output);
    CHECK(res.code == 2);
    CHECK(res.output.find("nap.yaml") != std::string::npos);
    CHECK(res.output.find("step 'a'") != std::string::npos);
  }
}

namespace {

/// The steps of the step_completed events of `id`, in order.
std::vector<std::string> completed_steps(node_process& node,
                                         const std::string& id) {
  std::vector<std::string> steps;
  auto hist = node.cli({"show", id, "--history", "--json"}).json();
  for (auto& ev : hist["history"])
    if (ev["type"] == "step_completed") steps.push_back(ev["step"]);
  return steps;
}

bool has(const std::vector<std::string>& all, const std::string& x) {
  return std::find(all.begin(), all.end(), x) != all.end();
}

} // namespace

TEST_CASE("check-upgrade --migrate moves compatible executions to the new "
          "version, recorded with who, and after kill -9 they still run it") {
  temp_dir flows;
  temp_dir edits;
  temp_dir data;
  write(flows.path / "nap.yaml", nap_yaml("rest", "", "8s"));
  write(edits.path / "nap.yaml", nap_yaml("rest", "extra", "8s"));
  auto edited = (edits.path / "nap.yaml").string();
  std::string old_version;
  std::string new_version;
  {
    node_process node{data.path, {}, flows.path};
    for (const auto* id : {"nap-0", "nap-1"}) {
      REQUIRE(
        node.cli({"start", "nap", "--id", id, "--input", R"({"n":1})"}).code
        == 0);
      REQUIRE(node.wait_status(id, "sleeping", 10s)["status"] == "sleeping");
    }
    old_version
      = node.cli({"show", "nap-0", "--json"}).json()["workflow_version"];
    auto res = node.cli(
      {"check-upgrade", edited, "--migrate", "--by", "ops-alice", "--json"});
    INFO(res.output);
    REQUIRE(res.code == 0);
    auto out = res.json();
    CHECK(out["migrated"] == 2);
    REQUIRE(out["executions"].size() == 2);
    for (auto& e : out["executions"])
      CHECK(e["migrated"] == true);
    new_version = out["version"];
    CHECK(new_version != old_version);
    auto shown = node.cli({"show", "nap-0", "--history", "--json"}).json();
    CHECK(shown["workflow_version"] == new_version);
    int migrations = 0;
    for (auto& ev : shown["history"])
      if (ev["type"] == "execution_migrated") {
        ++migrations;
        CHECK(ev["by"] == "ops-alice");
        CHECK(ev["from_version"] == old_version);
        CHECK(ev["to_version"] == new_version);
      }
    CHECK(migrations == 1);
    // Again: nothing left to move.
    auto again = node.cli({"check-upgrade", edited, "--migrate", "--by", "x"});
    INFO(again.output);
    CHECK(again.code == 0);
    CHECK(again.output.find("it runs this version already")
          != std::string::npos);
    CHECK(again.output.find("2 compatible, 0 incompatible, 0 migrated")
          != std::string::npos);
    // A start after the migration runs what the node loaded (the old file).
    REQUIRE(
      node.cli({"start", "nap", "--id", "nap-late", "--input", R"({"n":2})"})
        .code
      == 0);
    REQUIRE(node.wait_status("nap-late", "sleeping", 10s)["status"]
            == "sleeping");
    node.process().kill_hard();
  }
  // Restarted on the old file: the migrated executions resume on the
  // version they were moved to (read back from the store).
  node_process node{data.path, {}, flows.path};
  for (const auto* id : {"nap-0", "nap-1"}) {
    INFO(id);
    auto done = node.wait_status(id, "completed", 30s);
    REQUIRE(done["status"] == "completed");
    CHECK(done["workflow_version"] == new_version);
    auto steps = completed_steps(node, id);
    CHECK(has(steps, "done"));
    CHECK(has(steps, "extra"));
  }
  auto late = node.wait_status("nap-late", "completed", 30s);
  REQUIRE(late["status"] == "completed");
  CHECK(late["workflow_version"] == old_version);
  CHECK_FALSE(has(completed_steps(node, "nap-late"), "extra"));
}

TEST_CASE("check-upgrade --migrate leaves incompatible executions on their "
          "version and exits 4, and --migrate needs --by") {
  temp_dir flows;
  temp_dir edits;
  write(flows.path / "nap.yaml", nap_yaml("rest", ""));
  write(edits.path / "nap.yaml", nap_yaml("pause", ""));
  node_process node{{}, {}, flows.path};
  REQUIRE(
    node.cli({"start", "nap", "--id", "nap-x", "--input", R"({"n":1})"}).code
    == 0);
  REQUIRE(node.wait_status("nap-x", "sleeping", 10s)["status"] == "sleeping");
  auto before
    = node.cli({"show", "nap-x", "--json"}).json()["workflow_version"];
  auto edited = (edits.path / "nap.yaml").string();
  auto res = node.cli({"check-upgrade", edited, "--migrate", "--by", "bob"});
  INFO(res.output);
  CHECK(res.code == 4);
  CHECK(res.output.find("seq 3 step_scheduled 'rest'") != std::string::npos);
  CHECK(res.output.find("0 migrated") != std::string::npos);
  CHECK(node.cli({"show", "nap-x", "--json"}).json()["workflow_version"]
        == before);
  auto no_by = node.cli({"check-upgrade", edited, "--migrate"});
  CHECK(no_by.code == 2);
  CHECK(no_by.output.find("--by") != std::string::npos);
}
