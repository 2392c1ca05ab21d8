// A restart of the engine actor by its supervisor: live executions register
// with the new engine, so lookups, waiters and outcomes reach them again.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "tests/actors/engine_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using cerebelum::test::eventually;
using status = cerebelum::eventstore::execution_status;

namespace {

const char* gated_call_yaml = R"(name: held
version: "1"
steps:
  - name: a
    call: t.hold
    input: { n: "input.i" }
  - name: b
    call: t.inc
    input: { n: "steps.a.n" }
output:
  n: "steps.b.n"
)";

} // namespace

TEST_CASE("live executions register again with a restarted engine") {
  engine_fixture f;
  std::promise<void> release;
  auto released = release.get_future().share();
  auto entered = std::make_shared<std::atomic<bool>>(false);
  f.config().functions->add("t.hold", [released, entered](const json& in) {
    entered->store(true);
    released.wait();
    return json{{"n", in["n"].get<int>() * 10}};
  });
  std::ofstream{f.data_dir() / "workflows" / "held.yaml"} << gated_call_yaml;
  f.start();
  auto v = f.start("held", 4, "held-1");
  REQUIRE(eventually([&] {
    return entered->load() && f.is_live("held-1");
  }));
  auto old_engine = f.node().registry();
  // A waiter subscribed to the old engine must be carried over too.
  auto waiter = std::async(std::launch::async, [&] {
    return f.api().wait(v.execution_id, wait_time);
  });
  REQUIRE(eventually([&] {
    return f.waiters(v.execution_id) == 1;
  }));
  caf::anon_send_exit(old_engine, caf::exit_reason::user_shutdown);
  REQUIRE(eventually([&] {
    auto e = f.node().registry();
    return e && e != old_engine && f.is_live("held-1");
  }));
  // The waiter watches again through the new engine.
  REQUIRE(eventually([&] {
    return f.waiters(v.execution_id) == 1;
  }));
  release.set_value();
  auto done = waiter.get();
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 41}});
  // The node keeps working with the new engine.
  auto other = f.start("timeline", 1);
  auto ok = f.api().wait(other.execution_id, wait_time);
  REQUIRE(ok);
  CHECK(ok->result == json{{"n", 7}});
}
