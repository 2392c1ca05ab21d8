// engine_api::check_upgrade: every open execution of a workflow checked
// against a new definition, read only; engine_api::migrate: the compatible
// ones moved to it by their actors.

#include <catch2/catch.hpp>

#include "actors/errc.hpp"
#include "actors/operator_commands.hpp"
#include "tests/actors/engine_fixture.hpp"
#include "workflow/loader.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
namespace events = cerebelum::events;

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

/// napper with a step after the sleep that doubles the first step's result,
/// which becomes the output.
const char* napper_doubled = R"(name: napper
version: "4"
steps:
  - name: first
    call: t.inc
    input: { n: "input.i" }
  - name: nap
    sleep: { expr: "input.i" }
  - name: later
    call: t.double
    input: { n: "steps.first.n" }
output:
  n: "steps.later.n"
)";

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

TEST_CASE("migrate moves every compatible execution to the new version and "
          "it finishes on it, also after a restart of the node") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  for (const auto* id : {"nap-a", "nap-b"}) {
    auto view = f.start("napper", 5000, id);
    REQUIRE(f.wait_status(view.execution_id, status::sleeping));
  }
  auto old_version = f.api().describe("nap-a")->workflow_version;
  auto none = f.api().migrate(napper_doubled, "napper.yaml", "");
  REQUIRE_FALSE(none);
  CHECK(api_error_code(none.error()) == errc::invalid_argument);
  auto report = f.api().migrate(napper_doubled, "napper.yaml", "ops-alice");
  REQUIRE(report);
  REQUIRE(report->executions.size() == 2);
  for (const auto& e : report->executions) {
    INFO(e.execution_id << ": " << e.reason);
    CHECK(e.compatible);
    CHECK(e.migrated);
    CHECK(e.version == old_version);
  }
  auto desc = f.api().describe("nap-a");
  REQUIRE(desc);
  CHECK(desc->workflow_version == report->version);
  CHECK(desc->status == status::sleeping);
  auto history = f.api().history("nap-a", 0);
  REQUIRE(history);
  const events::ExecutionMigrated* moved = nullptr;
  for (const auto& ev : *history)
    if (ev.has_execution_migrated()) moved = &ev.execution_migrated();
  REQUIRE(moved);
  CHECK(moved->by() == "ops-alice");
  CHECK(moved->from_version() == old_version);
  CHECK(moved->to_version() == report->version);
  // Again: they run that version already; nothing is recorded.
  auto again = f.api().migrate(napper_doubled, "napper.yaml", "ops-alice");
  REQUIRE(again);
  for (const auto& e : again->executions) {
    CHECK_FALSE(e.migrated);
    CHECK(e.reason == "it runs this version already");
  }
  CHECK(
    count_of(f.api(), "nap-a", events::Event::PayloadCase::kExecutionMigrated)
    == 1);
  // The node restarts with the old file: the executions resume on the
  // version they were moved to, read back from the store.
  f.stop();
  f.start();
  clk.advance(std::chrono::milliseconds{5000});
  for (const auto* id : {"nap-a", "nap-b"}) {
    INFO(id);
    auto done = f.api().wait(id, wait_time);
    REQUIRE(done);
    CHECK(done->status == status::completed);
    // (5000 + 1) * 2: the new version's output; the old one gave 5001.
    CHECK(done->result == json{{"n", 10002}});
    CHECK(done->workflow_version == report->version);
  }
}

TEST_CASE("migrate leaves an incompatible execution on its version") {
  engine_fixture f;
  f.start_on_manual_clock();
  auto view = f.start("napper", 5000, "nap-r");
  REQUIRE(f.wait_status(view.execution_id, status::sleeping));
  auto report = f.api().migrate(napper("doze", false), "napper.yaml", "bob");
  REQUIRE(report);
  REQUIRE(report->executions.size() == 1);
  CHECK_FALSE(report->executions[0].compatible);
  CHECK_FALSE(report->executions[0].migrated);
  CHECK(report->executions[0].step == "nap");
  CHECK(f.api().describe("nap-r")->workflow_version == view.workflow_version);
  CHECK(
    count_of(f.api(), "nap-r", events::Event::PayloadCase::kExecutionMigrated)
    == 0);
}

TEST_CASE("the actor's own check: a migration of a history the new version "
          "does not reproduce is refused naming the event") {
  engine_fixture f;
  f.start_on_manual_clock();
  auto view = f.start("napper", 5000, "nap-m");
  REQUIRE(f.wait_status(view.execution_id, status::sleeping));
  auto history = f.api().history("nap-m", 0);
  REQUIRE(history);
  auto v1 = cerebelum::workflow::load_file(f.data_dir() / "workflows"
                                           / "napper.yaml");
  REQUIRE(v1);
  cerebelum::workflow::execution_state state{*v1, "nap-m"};
  for (const auto& ev : *history)
    REQUIRE(state.apply(ev));
  auto renamed = cerebelum::workflow::load_yaml(napper("doze", false),
                                                "n.yaml");
  REQUIRE(renamed);
  auto refused = migration_of(
    state,
    *make_migration("bob",
                    std::make_shared<const cerebelum::workflow::definition>(
                      std::move(*renamed))),
    *history, 1);
  REQUIRE_FALSE(refused);
  CHECK(api_error_code(refused.error()) == errc::incompatible);
  CHECK_THAT(api_error_message(refused.error()),
             Catch::Contains("seq 3 step_scheduled 'nap'"));
  auto doubled = cerebelum::workflow::load_yaml(napper_doubled, "n.yaml");
  REQUIRE(doubled);
  auto to = std::make_shared<const cerebelum::workflow::definition>(
    std::move(*doubled));
  auto moved = migration_of(state, *make_migration("bob", to), *history, 1);
  REQUIRE(moved);
  REQUIRE(*moved);
  const auto& m = **moved;
  CHECK(m.event.seq() == state.next_seq());
  CHECK(m.event.execution_migrated().from_version() == v1->version_hash);
  CHECK(m.event.execution_migrated().to_version() == to->version_hash);
  CHECK(m.state->versions()
        == std::vector<std::uint64_t>{v1->version_hash, to->version_hash});
  CHECK(m.state->status() == state.status());
  // Already on it: nothing to record.
  auto same = migration_of(*m.state, *make_migration("bob", to), *history, 1);
  REQUIRE(same);
  CHECK_FALSE(*same);
}
