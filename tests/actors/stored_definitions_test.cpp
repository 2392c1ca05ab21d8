// Durable definitions: an execution resumes on the version it started on,
// read back from the store when the files (or the workers) no longer give
// it; one whose definition is nowhere can still be cancelled and says why
// it is stuck.

#include <catch2/catch.hpp>

#include <fstream>

#include <sqlite3.h>

#include "actors/errc.hpp"
#include "tests/actors/engine_fixture.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
namespace events = cerebelum::events;

namespace {

/// napper with its sleep renamed and a different output: another version.
const char* napper_v2_yaml = R"(name: napper
version: "2"
steps:
  - name: first
    call: t.inc
    input: { n: "input.i" }
  - name: doze
    sleep: { expr: "input.i" }
output:
  m: "steps.first.n"
)";

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out{path, std::ios::trunc};
  out << text;
  REQUIRE(out.good());
}

void exec_sql(const std::filesystem::path& data_dir, const std::string& sql) {
  sqlite3* db = nullptr;
  auto path = (data_dir / "cerebelum-events.db").string();
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

const workflow_view* find_version(const std::vector<workflow_view>& all,
                                  const std::string& name,
                                  std::uint64_t version) {
  for (auto& v : all)
    if (v.name == name && v.version == version) return &v;
  return nullptr;
}

} // namespace

TEST_CASE("an execution resumes on its own version, read from the store, "
          "after its file was edited") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  auto old = f.start("napper", 1500, "nap-old");
  REQUIRE(f.wait_status(old.execution_id, status::sleeping));
  auto v1 = old.workflow_version;
  f.stop();
  write(f.data_dir() / "workflows" / "napper.yaml", napper_v2_yaml);
  f.start();
  // Not parked: it shows no stuck reason, and the store has its version.
  auto desc = f.api().describe(old.execution_id);
  REQUIRE(desc);
  CHECK(desc->status == status::sleeping);
  CHECK(desc->stuck_reason.empty());
  auto all = f.api().workflows();
  auto* stored = find_version(all, "napper", v1);
  REQUIRE(stored);
  CHECK(stored->stored);
  CHECK_FALSE(stored->latest);
  CHECK(stored->open_executions == 1);
  // A new start runs the file's version.
  auto fresh = f.start("napper", 10, "nap-new");
  CHECK(fresh.workflow_version != v1);
  all = f.api().workflows();
  auto* latest = find_version(all, "napper", fresh.workflow_version);
  REQUIRE(latest);
  CHECK(latest->latest);
  CHECK(latest->loaded);
  // A start may still name the old version.
  start_request pinned;
  pinned.workflow = "napper";
  pinned.version = v1;
  pinned.input = json{{"i", 5}};
  pinned.execution_id = "nap-pinned";
  auto p = f.api().start(pinned);
  REQUIRE(p);
  CHECK(p->execution.workflow_version == v1);
  // Their timers are armed (after their first step) before time moves.
  REQUIRE(f.wait_status(fresh.execution_id, status::sleeping));
  REQUIRE(f.wait_status("nap-pinned", status::sleeping));
  clk.advance(std::chrono::milliseconds{1500});
  auto done = f.api().wait(old.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  // The old version's output, not the file's.
  CHECK(done->result == json{{"n", 1501}});
  auto fresh_done = f.api().wait(fresh.execution_id, wait_time);
  REQUIRE(fresh_done);
  CHECK(fresh_done->result == json{{"m", 11}});
  auto pinned_done = f.api().wait("nap-pinned", wait_time);
  REQUIRE(pinned_done);
  CHECK(pinned_done->result == json{{"n", 6}});
}

TEST_CASE("a start of an unknown version is refused naming it") {
  engine_fixture f;
  f.start();
  start_request req;
  req.workflow = "napper";
  req.version = 12345;
  auto r = f.api().start(req);
  REQUIRE_FALSE(r);
  CHECK(api_error_code(r.error()) == errc::unknown_workflow);
  CHECK_THAT(api_error_message(r.error()), Catch::Contains("12345"));
}

TEST_CASE("an execution whose definition is neither loaded nor stored shows "
          "why it is stuck and can be cancelled") {
  engine_fixture f;
  f.start_on_manual_clock();
  auto old = f.start("napper", 1500, "nap-lost");
  REQUIRE(f.wait_status(old.execution_id, status::sleeping));
  auto other = f.start("sleeper", 1500, "sleeper-ok");
  REQUIRE(f.wait_status(other.execution_id, status::sleeping));
  f.stop();
  // As a store written before definitions were stored would be.
  exec_sql(f.data_dir(), "DELETE FROM definitions WHERE name = 'napper'");
  write(f.data_dir() / "workflows" / "napper.yaml", napper_v2_yaml);
  f.start();
  auto desc = f.api().describe(old.execution_id);
  REQUIRE(desc);
  CHECK(desc->status == status::sleeping);
  CHECK_THAT(desc->stuck_reason, Catch::Contains("neither"));
  list_request lreq;
  lreq.stuck = true;
  auto stuck = f.api().list(lreq);
  REQUIRE(stuck);
  REQUIRE(stuck->executions.size() == 1);
  CHECK(stuck->executions[0].execution_id == old.execution_id);
  CHECK_FALSE(stuck->executions[0].stuck_reason.empty());
  // Approve is refused with why; cancel ends it from its index row.
  auto approve = f.api().approve(old.execution_id, "op", json::object());
  REQUIRE_FALSE(approve);
  CHECK(api_error_code(approve.error()) == errc::unknown_workflow);
  auto cancelled = f.api().cancel(old.execution_id, "op", "definition lost");
  if (!cancelled) FAIL(api_error_message(cancelled.error()));
  CHECK(cancelled->status == status::cancelled);
  CHECK(cancelled->stuck_reason.empty());
  auto history = f.api().history(old.execution_id, 0);
  REQUIRE(history);
  REQUIRE_FALSE(history->empty());
  CHECK(history->back().has_execution_cancelled());
  CHECK(history->back().execution_cancelled().by() == "op");
  // No longer listed as stuck; a second cancel is refused as terminal.
  auto after = f.api().list(lreq);
  REQUIRE(after);
  CHECK(after->executions.empty());
  auto again = f.api().cancel(old.execution_id, "op", "");
  REQUIRE_FALSE(again);
  CHECK(api_error_code(again.error()) == errc::already_terminal);
}

TEST_CASE("a native function an old version needs and the binary no longer "
          "has fails its step visibly") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  auto v = f.start("sleeper", 1000, "needs-inc");
  REQUIRE(f.wait_status(v.execution_id, status::sleeping));
  f.stop();
  // The new binary has no t.inc.
  auto fns = std::make_shared<function_registry>();
  fns->add("t.double", [](const json& in) {
    return json{{"n", in.value("n", 0) * 2}};
  });
  f.config().functions = fns;
  f.start();
  clk.advance(std::chrono::milliseconds{1000});
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::failed);
  REQUIRE(done->error);
  CHECK_THAT(done->error->message, Catch::Contains("t.inc"));
}
