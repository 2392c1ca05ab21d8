// The engine on a manual clock: timers, the scheduler's horizon, retry
// backoff, passivation and task leases happen when the test moves time past
// their moment, never before, and every stamp the engine records is the
// clock's time.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "tests/actors/engine_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace cerebelum::actors;
using namespace std::chrono_literals;
using namespace cerebelum::actors::test;
using cerebelum::test::eventually;
using status = cerebelum::eventstore::execution_status;
namespace events = cerebelum::events;

namespace {

/// The first event of kind `which` in the history of `id`.
events::Event first_of(engine_api& api, const std::string& id,
                       events::Event::PayloadCase which) {
  auto hist = api.history(id, 0);
  REQUIRE(hist);
  for (auto& ev : *hist)
    if (ev.payload_case() == which) return ev;
  FAIL("no event of kind " << static_cast<int>(which) << " in " << id);
  return {};
}

/// Whether a message is armed on `clk` for exactly `moment`.
bool armed_at(const manual_clock& clk, std::int64_t moment) {
  auto xs = clk.due_moments();
  return std::find(xs.begin(), xs.end(), moment) != xs.end();
}

} // namespace

TEST_CASE("a sleeping execution passivates and wakes on its timer") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  auto t0 = clk.now_ms();
  auto v = f.start("sleeper", 1500);
  const auto& id = v.execution_id;
  REQUIRE(f.wait_status(id, status::sleeping));
  REQUIRE(f.wait_passivated(id));
  auto desc = f.api().describe(id);
  REQUIRE(desc);
  CHECK(desc->wake_at_ms == t0 + 1500);
  // The timer and its prewarm (1 s ahead) are in the scheduler's memory.
  REQUIRE(eventually([&] {
    return f.scheduler_stats().first == 2;
  }));
  clk.advance(1499ms);
  // The prewarm respawned the actor ahead of the timer; the timer itself
  // has not fired.
  REQUIRE(eventually([&] {
    return f.is_live(id);
  }));
  CHECK(f.scheduler_stats().second == 0);
  CHECK(count_of(f.api(), id, events::Event::kTimerFired) == 0);
  CHECK(f.api().describe(id)->status == status::sleeping);
  clk.advance(1ms);
  auto done = f.api().wait(id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 1501}});
  CHECK(count_of(f.api(), id, events::Event::kTimerFired) == 1);
  auto fired = first_of(f.api(), id, events::Event::kTimerFired);
  CHECK(fired.timer_fired().fired_at_ms() == t0 + 1500);
}

TEST_CASE("a timer beyond the scheduler's horizon is paged in and fires at "
          "its moment") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  auto t0 = clk.now_ms();
  auto v = f.start("sleeper", 100'000); // horizon: 30 s
  const auto& id = v.execution_id;
  REQUIRE(f.wait_status(id, status::sleeping));
  // Beyond the horizon the sleeper costs the node nothing but its rows.
  CHECK(f.scheduler_stats().first == 0);
  clk.advance(99'999ms);
  REQUIRE(eventually([&] {
    return f.scheduler_stats().first >= 1;
  }));
  CHECK(f.scheduler_stats().second == 0);
  CHECK(f.api().describe(id)->status == status::sleeping);
  clk.advance(1ms);
  auto done = f.api().wait(id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  auto fired = first_of(f.api(), id, events::Event::kTimerFired);
  CHECK(fired.timer_fired().fired_at_ms() == t0 + 100'000);
}

TEST_CASE("a sleeping execution keeps its actor for the passivation delay "
          "and passivates after it") {
  engine_fixture f;
  auto& clk = f.manual_time();
  f.config().passivation_delay = 10s;
  f.start();
  // A call first, so the execution has an actor when it starts sleeping;
  // its timer (60 s) is far beyond the prewarm.
  auto t0 = clk.now_ms();
  auto v = f.start("napper", 60'000);
  const auto& id = v.execution_id;
  REQUIRE(f.wait_status(id, status::sleeping));
  // The passivation is armed for exactly t0 + 10 s.
  REQUIRE(eventually([&] {
    return armed_at(clk, t0 + 10'000);
  }));
  CHECK(f.is_live(id));
  clk.advance(9'999ms);
  CHECK(armed_at(clk, t0 + 10'000));
  CHECK(f.is_live(id));
  clk.advance(1ms);
  REQUIRE(f.wait_passivated(id));
  CHECK(f.api().describe(id)->status == status::sleeping);
}

TEST_CASE("a retryable failure is retried after its backoff, not before") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  test::flaky_failures = 2;
  auto v = f.start("slow_retry", 4); // backoff 5 s, then 10 s
  const auto& id = v.execution_id;
  auto failures = [&] {
    return count_of(f.api(), id, events::Event::kStepFailed);
  };
  REQUIRE(eventually([&] {
    return failures() == 1;
  }));
  clk.advance(4'999ms);
  // The scheduler handles what the clock delivered before it answers: no
  // timer has fired by t0 + 4999.
  CHECK(f.scheduler_stats().second == 0);
  CHECK(failures() == 1);
  CHECK(count_of(f.api(), id, events::Event::kStepScheduled) == 1);
  clk.advance(1ms);
  REQUIRE(eventually([&] {
    return failures() == 2;
  }));
  clk.advance(9'999ms);
  CHECK(f.scheduler_stats().second == 1);
  CHECK(failures() == 2);
  CHECK(f.api().describe(id)->status == status::sleeping); // in its backoff
  clk.advance(1ms);
  auto done = f.api().wait(id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 4}});
  CHECK(count_of(f.api(), id, events::Event::kStepFailed) == 2);
  CHECK(count_of(f.api(), id, events::Event::kStepScheduled) == 3);
}

TEST_CASE("every stamp the engine records is the time of the node's clock") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  auto t0 = clk.now_ms();
  auto v = f.start("timeline", 1);
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  // Generated ids carry the creation time in hex.
  char hex[16];
  std::snprintf(hex, sizeof(hex), "%012llx",
                static_cast<unsigned long long>(t0));
  CHECK(v.execution_id.rfind(std::string{"ex-"} + hex, 0) == 0);
  CHECK(done->created_at_ms == t0);
  CHECK(done->updated_at_ms == t0);
  auto hist = f.api().history(v.execution_id, 0);
  REQUIRE(hist);
  for (auto& ev : *hist) {
    INFO("event " << ev.seq());
    CHECK(ev.recorded_at_ms() == t0);
    if (ev.has_step_completed())
      CHECK(ev.step_completed().completed_at_ms() == t0);
  }
  CHECK(first_of(f.api(), v.execution_id, events::Event::kExecutionStarted)
          .execution_started()
          .started_at_ms()
        == t0);
}

namespace {

const char* leased_yaml = R"(name: leased
version: "1"
steps:
  - name: work
    task: t.work
    queue: lq
    heartbeat_timeout: 10s
)";

} // namespace

TEST_CASE("a lease without heartbeats expires at its moment, and a heartbeat "
          "before it extends it") {
  engine_fixture f;
  auto& clk = f.manual_time();
  std::ofstream{f.data_dir() / "workflows" / "leased.yaml"} << leased_yaml;
  f.start();
  auto tasks = f.node().tasks();
  REQUIRE(sync<registration_info>([&](auto done) {
    tasks->register_worker({"w1", {"lq"}, {}, 1, {}}, std::move(done));
  }));
  auto t0 = clk.now_ms();
  auto v = f.start("leased", 1);
  auto polled = sync<std::optional<leased_task>>([&](auto done) {
    tasks->poll("w1", {"lq"}, 60s, std::move(done));
  });
  REQUIRE(polled);
  REQUIRE(*polled.value);
  auto token = (*polled.value)->attempt_token;
  CHECK((*polled.value)->lease_expires_at_ms == t0 + 10'000);
  // Just before the end of the lease it is still held: the heartbeat is
  // accepted and extends it by another 10 s.
  clk.advance(9'999ms);
  auto beat = sync<heartbeat_info>([&](auto done) {
    tasks->heartbeat("w1", token, "", std::move(done));
  });
  REQUIRE(beat);
  CHECK(beat.value->lease_expires_at_ms == t0 + 19'999);
  clk.advance(9'999ms);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepFailed) == 0);
  // The router checks leases every tick (20 ms): past the end of the lease
  // and one tick, the attempt has failed.
  clk.advance(21ms);
  REQUIRE(eventually([&] {
    return count_of(f.api(), v.execution_id, events::Event::kStepFailed) == 1;
  }));
  auto failed = first_of(f.api(), v.execution_id, events::Event::kStepFailed);
  // The step has a heartbeat_timeout: that is what passed.
  CHECK(failed.step_failed().error().kind() == "heartbeat_timeout");
  CHECK(failed.step_failed().lost());
  CHECK(failed.step_failed().failed_at_ms() >= t0 + 19'999);
  CHECK(failed.step_failed().failed_at_ms() <= t0 + 20'019);
}
