// `cerebelum check-upgrade FILE` against a real node: executions sleeping in
// the second step of a workflow, checked against edited copies of its file.

#include <catch2/catch.hpp>

#include <fstream>

#include "tests/node/node_fixture.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// prepare (set) -> `sleeper` (sleep 10 min) -> done (set) [-> `extra`].
std::string nap_yaml(const std::string& sleeper, const std::string& extra) {
  std::string out = "name: nap\n"
                    "steps:\n"
                    "  - name: prepare\n"
                    "    set: { n: \"input.n\" }\n"
                    "  - name: "
                    + sleeper
                    + "\n"
                      "    sleep: 10m\n"
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
