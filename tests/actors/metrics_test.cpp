// The node's metrics (actors/metrics.hpp) move with what the engine does:
// executions, task queues, leases, steps, commits, timers; read as
// Prometheus text, as GET /metrics serves them.

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <future>
#include <string>

#include "tests/actors/engine_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/metrics_text.hpp"

using namespace cerebelum::actors;
using namespace std::chrono_literals;
using namespace cerebelum::actors::test;
using cerebelum::test::eventually;
using status = cerebelum::eventstore::execution_status;

namespace {

using cerebelum::test::metric_value;

const char* metered_yaml = R"(name: metered
steps:
  - name: work
    task: t.work
    queue: mq
  - name: rest
    sleep: 2s
)";

} // namespace

TEST_CASE("metrics count executions, task queues, lease expiries, task "
          "steps, commits and timers as they happen") {
  engine_fixture f;
  auto& clk = f.manual_time();
  std::ofstream{f.data_dir() / "workflows" / "metered.yaml"} << metered_yaml;
  f.start();
  auto metrics = [&] {
    return f.api().metrics_text();
  };
  auto tasks = f.node().tasks();
  REQUIRE(sync<registration_info>([&](auto done) {
    tasks->register_worker({"w1", {"mq"}, {}, 1, {}}, std::move(done));
  }));
  auto v = f.start("metered", 1);
  CHECK(
    metric_value(metrics(),
                 R"(cerebelum_executions_started_total{workflow="metered"})")
    == 1);
  REQUIRE(eventually([&] {
    return metric_value(metrics(), R"(cerebelum_task_queue_ready{queue="mq"})")
           == 1;
  }));
  CHECK(metric_value(metrics(), R"(cerebelum_task_queue_workers{queue="mq"})")
        == 1);
  auto first = sync<std::optional<leased_task>>([&](auto done) {
    tasks->poll("w1", {"mq"}, 60s, std::move(done));
  });
  REQUIRE(first);
  REQUIRE(*first.value);
  auto text = metrics();
  CHECK(metric_value(text, R"(cerebelum_task_queue_ready{queue="mq"})") == 0);
  CHECK(metric_value(text, R"(cerebelum_task_queue_leased{queue="mq"})") == 1);
  CHECK(metric_value(text, R"(cerebelum_task_lease_expiries_total{queue="mq"})")
        == 0);
  // The worker goes silent past the node's task lease (6 s).
  clk.advance(7'000ms);
  REQUIRE(eventually([&] {
    return metric_value(metrics(),
                        R"(cerebelum_task_lease_expiries_total{queue="mq"})")
           == 1;
  }));
  // The lost attempt is offered again; this time the worker answers.
  std::optional<leased_task> again;
  REQUIRE(eventually([&] {
    auto polled = sync<std::optional<leased_task>>([&](auto done) {
      tasks->poll("w1", {"mq"}, 0s, std::move(done));
    });
    if (polled && *polled.value) again = *polled.value;
    if (!again) clk.advance(1'000ms);
    return again.has_value();
  }));
  std::promise<task_result<complete_info>> done;
  tasks->complete("w1", again->attempt_token, task_success{R"({"ok":true})"},
                  [&](task_result<complete_info> r) {
                    done.set_value(std::move(r));
                  });
  REQUIRE(done.get_future().get());
  CHECK(
    metric_value(
      metrics(),
      R"(cerebelum_step_duration_seconds_count{kind="task",outcome="completed"})")
    == 1);
  // The execution sleeps 2 s on a durable timer, then completes.
  REQUIRE(eventually([&] {
    return count_of(f.api(), v.execution_id,
                    cerebelum::events::Event::kTimerStarted)
           == 1;
  }));
  clk.advance(2'000ms);
  auto end = f.api().wait(v.execution_id, wait_time);
  REQUIRE(end);
  CHECK(end->status == status::completed);
  text = metrics();
  INFO(text);
  CHECK(metric_value(text, "cerebelum_timer_lateness_seconds_count") >= 1);
  CHECK(
    metric_value(
      text,
      R"(cerebelum_executions_finished_total{status="completed",workflow="metered"})")
    == 1);
  CHECK(
    metric_value(
      text, R"(cerebelum_execution_duration_seconds_count{workflow="metered"})")
    == 1);
  // The start, the lease's failure, the outcome and the timer's firing are
  // separate commits at least.
  CHECK(metric_value(text, "cerebelum_store_commit_seconds_count") >= 4);
  CHECK(metric_value(text, "cerebelum_store_commit_group_size_sum")
        >= metric_value(text, "cerebelum_store_commit_group_size_count"));
  CHECK(metric_value(text, "cerebelum_store_available") == 1);
  CHECK(metric_value(text, R"(cerebelum_task_queue_leased{queue="mq"})") == 0);
}
