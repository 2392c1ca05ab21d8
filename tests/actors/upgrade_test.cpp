// engine_api::check_upgrade: every open execution of a workflow checked
// against a new definition, read only.

#include <catch2/catch.hpp>

#include "actors/errc.hpp"
#include "tests/actors/engine_fixture.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;

namespace {

/// napper (engine_fixture.cpp) with `nap` renamed to `sleep_name` and, when
/// given, a step added after it.
std::string napper(const std::string& sleep_name, bool extra) {
  std::string out = R"(name: napper
version: "3"
steps:
  - name: first
    call: t.inc
    input: { n: "input.i" }
  - name: )" + sleep_name
                    + R"(
    sleep: { expr: "input.i" }
)";
  if (extra) out += "  - name: later\n    call: t.double\n";
  return out + "output:\n  n: \"steps.first.n\"\n";
}

} // namespace

TEST_CASE("check_upgrade reports each open execution of the workflow and "
          "the first event a renamed step diverges at") {
  engine_fixture f;
  f.start_on_manual_clock();
  for (const auto* id : {"nap-a", "nap-b"}) {
    auto view = f.start("napper", 5000, id);
    REQUIRE(f.wait_status(view.execution_id, status::sleeping));
  }
  auto renamed = f.api().check_upgrade(napper("doze", false), "napper.yaml");
  REQUIRE(renamed);
  CHECK(renamed->workflow == "napper");
  REQUIRE(renamed->executions.size() == 2);
  for (const auto& e : renamed->executions) {
    CHECK_FALSE(e.compatible);
    CHECK(e.event_type == "step_scheduled");
    CHECK(e.step == "nap");
    CHECK(e.seq == 3);
    CHECK(e.reason.find("'nap' is not in the new definition")
          != std::string::npos);
  }
  auto added = f.api().check_upgrade(napper("nap", true), "napper.yaml");
  REQUIRE(added);
  REQUIRE(added->executions.size() == 2);
  for (const auto& e : added->executions) {
    CHECK(e.compatible);
    CHECK(e.reason.empty());
  }
  // Read only: they still sleep on the version they started on.
  auto desc = f.api().describe("nap-a");
  REQUIRE(desc);
  CHECK(desc->status == status::sleeping);
  CHECK(desc->workflow_version != added->version);
}

TEST_CASE("check_upgrade refuses a definition that does not load, naming "
          "the file and the problem") {
  engine_fixture f;
  f.start();
  auto res = f.api().check_upgrade("name: napper\nsteps:\n  - name: x\n",
                                   "edited/napper.yaml");
  REQUIRE_FALSE(res);
  CHECK(api_error_code(res.error()) == errc::invalid_argument);
  auto msg = api_error_message(res.error());
  CHECK(msg.find("edited/napper.yaml") != std::string::npos);
  CHECK(msg.find("step 'x'") != std::string::npos);
}
