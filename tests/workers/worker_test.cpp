// Remote workers against the real node binary over gRPC.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <future>
#include <set>
#include <thread>

#include "tests/node/node_fixture.hpp"
#include "tests/workers/worker_client.hpp"

using namespace cerebelum;
using namespace cerebelum::test;
using namespace std::chrono_literals;
using pc = events::Event::PayloadCase;

namespace {

/// Two task steps; the second gets the first's result.
const char* two_tasks = R"(
name: wt_two
version: "1"
output: "steps.b"
steps:
  - name: a
    task: t.a
    queue: q
    input: { n: "input.n" }
  - name: b
    task: t.b
    queue: q
    input: { m: "steps.a.m" }
)";

/// One task step with a short heartbeat timeout and a retry policy.
const char* leased = R"(
name: wt_lease
version: "1"
steps:
  - name: work
    task: t.work
    queue: lq
    heartbeat_timeout: 600ms
    retry: { max_attempts: 4, initial_interval: 100ms, backoff_coefficient: 1 }
)";

/// One task step with a 1 s start-to-close timeout and no retry.
const char* timed = R"(
name: wt_timed
version: "1"
output: "steps.work"
steps:
  - name: work
    task: t.timed
    queue: tq
    timeout: 1s
)";

/// Exact backoff delays: 300 ms then 600 ms.
const char* backoff = R"(
name: wt_backoff
version: "1"
steps:
  - name: flaky
    task: t.flaky
    queue: bq
    retry: { max_attempts: 3, initial_interval: 300ms, backoff_coefficient: 2 }
)";

/// No retry: a non-retryable failure fails the execution (a dead letter).
const char* fragile = R"(
name: wt_fragile
version: "1"
output: "steps.once"
steps:
  - name: once
    task: t.once
    queue: dq
    input: { x: "input.x" }
)";

/// Registered only by workers (not in tests/workers/workflows).
const char* parked_flow = R"(
name: wt_parked
version: "1"
output: "steps.b"
steps:
  - name: a
    task: t.a
    queue: pq
    input: { n: "input.n" }
  - name: b
    task: t.b
    queue: pq
    input: { m: "steps.a.m" }
)";

/// A durable sleep, then a task; registered only by workers.
const char* parked_sleep_flow = R"(
name: wt_parked_sleep
version: "1"
output: "steps.after"
steps:
  - name: pause
    sleep: 2s
  - name: after
    task: t.after
    queue: psq
)";

std::string unique_prefix() {
  return std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr))
         + "-";
}

} // namespace

TEST_CASE("a worker registers a YAML workflow of task steps, polls and "
          "completes them, and the execution finishes") {
  node_process node;
  worker_client c{node.grpc_port};
  worker::RegisterResponse reg;
  auto st = c.register_worker("w1", {"q"}, two_tasks, 1, &reg);
  INFO(st.error_message());
  REQUIRE(st.ok());
  REQUIRE(reg.workflows_size() == 1);
  CHECK(reg.workflows(0) == "wt_two");
  CHECK(reg.lease_timeout_ms() > 0);
  auto id = c.start("wt_two", R"({"n": 20})");
  auto t1 = c.poll_until("w1", 10s);
  REQUIRE(t1);
  CHECK(t1->execution_id() == id);
  CHECK(t1->workflow() == "wt_two");
  CHECK(t1->step() == "a");
  CHECK(t1->task_type() == "t.a");
  CHECK(t1->queue() == "q");
  CHECK(t1->attempt() == 1);
  CHECK(nlohmann::json::parse(t1->input_json()) == nlohmann::json{{"n", 20}});
  CHECK(t1->lease_expires_at_ms() > 0);
  bool recorded = false;
  st = c.complete("w1", t1->attempt_token(), R"({"m": 21})", &recorded);
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(recorded);
  // A retried call for the same attempt is acknowledged, not recorded twice.
  st = c.complete("w1", t1->attempt_token(), R"({"m": 21})", &recorded);
  REQUIRE(st.ok());
  CHECK_FALSE(recorded);
  auto t2 = c.poll_until("w1", 10s);
  REQUIRE(t2);
  CHECK(t2->step() == "b");
  CHECK(nlohmann::json::parse(t2->input_json()) == nlohmann::json{{"m", 21}});
  REQUIRE(c.complete("w1", t2->attempt_token(), R"({"done": true})").ok());
  auto info = c.wait(id, 10s);
  CHECK(info.status() == "completed");
  CHECK(nlohmann::json::parse(info.result_json())
        == nlohmann::json{{"done", true}});
  auto h = c.history(id);
  CHECK(count_events(h, pc::kStepCompleted) == 2);
  for (auto& ev : h)
    if (ev.has_step_completed()) CHECK(ev.step_completed().worker_id() == "w1");
}

TEST_CASE("a completion with want_next is answered with the next step's task "
          "leased to the worker, so a sequence needs no poll after the first") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("w1", {"q"}, two_tasks).ok());
  auto id = c.start("wt_two", R"({"n": 5})");
  auto t1 = c.poll_until("w1", 10s);
  REQUIRE(t1);
  auto complete = [&](const worker::Task& t, const std::string& result,
                      worker::CompleteTaskResponse& res) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    worker::CompleteTaskRequest req;
    req.set_worker_id("w1");
    req.set_attempt_token(t.attempt_token());
    req.set_result_json(result);
    req.set_want_next(true);
    return c.workers().CompleteTask(&ctx, req, &res);
  };
  worker::CompleteTaskResponse res;
  auto st = complete(*t1, R"({"m": 6})", res);
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(res.recorded());
  REQUIRE(res.has_next_task());
  auto& t2 = res.next_task();
  CHECK(t2.execution_id() == id);
  CHECK(t2.step() == "b");
  CHECK(nlohmann::json::parse(t2.input_json()) == nlohmann::json{{"m", 6}});
  CHECK(t2.lease_expires_at_ms() > 0);
  // It is leased to w1: completing it is accepted, and nothing is left.
  worker::CompleteTaskResponse last;
  REQUIRE(complete(t2, R"({"done": 1})", last).ok());
  CHECK(last.recorded());
  CHECK_FALSE(last.has_next_task());
  auto info = c.wait(id, 10s);
  CHECK(info.status() == "completed");
  CHECK(count_events(c.history(id), pc::kStepCompleted) == 2);
}

namespace {

/// Registers worker "tw" with wt_timed, starts an execution of it (its id in
/// `id`) and polls its task after `idle`, while which the task waits in its
/// queue.
std::optional<worker::Task> timed_task_after(worker_client& c, std::string& id,
                                             std::chrono::milliseconds idle) {
  REQUIRE(c.register_worker("tw", {"tq"}, timed).ok());
  id = c.start("wt_timed", "{}");
  std::this_thread::sleep_for(idle);
  std::optional<worker::Task> t;
  REQUIRE(c.poll("tw", t, 5s).ok());
  REQUIRE(t);
  return t;
}

} // namespace

TEST_CASE("a task step's timeout counts from its lease, not from the time it "
          "waited for a free worker") {
  node_process node;
  worker_client c{node.grpc_port};
  std::string id;
  // No worker polls for 2.5 timeouts: the task waits in its queue.
  auto t = timed_task_after(c, id, 2500ms);
  CHECK(t->attempt() == 1);
  REQUIRE(c.complete("tw", t->attempt_token(), R"({"ok": true})").ok());
  auto info = c.wait(id, 10s);
  CHECK(info.status() == "completed");
  CHECK(count_events(c.history(id), pc::kStepFailed) == 0);
}

TEST_CASE("a leased task step that runs past its timeout fails with kind "
          "timeout, counted from the lease") {
  node_process node;
  worker_client c{node.grpc_port};
  std::string id;
  auto t = timed_task_after(c, id, 1200ms);
  auto leased = std::chrono::steady_clock::now();
  // The worker holds it past its timeout.
  auto info = c.wait(id, 10s);
  auto failed_after = std::chrono::steady_clock::now() - leased;
  CHECK(info.status() == "failed");
  CHECK(failed_after >= 900ms);
  bool timed_out = false;
  for (auto& ev : c.history(id))
    if (ev.has_step_failed() && ev.step_failed().error().kind() == "timeout")
      timed_out = true;
  CHECK(timed_out);
  // Its outcome comes too late.
  auto st = c.complete("tw", t->attempt_token(), R"({"ok": true})");
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_CASE("heartbeats extend a lease past its timeout and record progress") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("hb", {"lq"}, leased).ok());
  auto id = c.start("wt_lease", "{}");
  auto t = c.poll_until("hb", 10s);
  REQUIRE(t);
  CHECK(t->heartbeat_timeout_ms() == 600);
  auto first_expiry = t->lease_expires_at_ms();
  // 2 s of work, three times the heartbeat timeout.
  std::int64_t last_expiry = 0;
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(200ms);
    worker::HeartbeatResponse hb;
    auto st = c.heartbeat("hb", t->attempt_token(),
                          R"({"done": )" + std::to_string(i) + "}", &hb);
    INFO(st.error_message());
    REQUIRE(st.ok());
    CHECK_FALSE(hb.cancel_requested());
    last_expiry = hb.lease_expires_at_ms();
  }
  CHECK(last_expiry > first_expiry + 1500);
  bool recorded = false;
  REQUIRE(c.complete("hb", t->attempt_token(), "1", &recorded).ok());
  CHECK(recorded);
  CHECK(c.wait(id, 10s).status() == "completed");
  auto h = c.history(id);
  CHECK(count_events(h, pc::kStepScheduled) == 1);
  CHECK(count_events(h, pc::kStepFailed) == 0);
  // Rate-limited to one per second: 2 s of heartbeats record 2 or 3.
  auto progress = count_events(h, pc::kStepProgress);
  CHECK(progress >= 2);
  CHECK(progress <= 3);
}

TEST_CASE("an expired lease fails the attempt, the retry is a new attempt, "
          "and the late result of the expired one is rejected") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("slow", {"lq"}, leased).ok());
  REQUIRE(c.register_worker("fast", {"lq"}).ok());
  auto id = c.start("wt_lease", "{}");
  auto t1 = c.poll_until("slow", 10s);
  REQUIRE(t1);
  // No heartbeat: after 600 ms (the step's heartbeat_timeout) the attempt
  // is lost and offered again at once, outside the retry budget.
  auto t2 = c.poll_until("fast", 10s);
  REQUIRE(t2);
  CHECK(t2->attempt() == 2);
  CHECK(t2->attempt_token() != t1->attempt_token());
  auto late = c.complete("slow", t1->attempt_token(), R"("late")");
  CHECK(late.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(late.error_message(), Catch::Contains("no heartbeat"));
  auto hb = c.heartbeat("slow", t1->attempt_token());
  CHECK(hb.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  REQUIRE(c.complete("fast", t2->attempt_token(), R"("ok")").ok());
  auto info = c.wait(id, 10s);
  CHECK(info.status() == "completed");
  auto h = c.history(id);
  CHECK(count_events(h, pc::kStepCompleted) == 1);
  REQUIRE(count_events(h, pc::kStepFailed) == 1);
  for (auto& ev : h)
    if (ev.has_step_failed()) {
      CHECK(ev.step_failed().error().kind() == "heartbeat_timeout");
      CHECK(ev.step_failed().error().retryable());
      CHECK(ev.step_failed().lost());
    }
  for (auto& ev : h)
    if (ev.has_diverge_taken()) CHECK(ev.diverge_taken().action() == "reoffer");
  for (auto& ev : h)
    if (ev.has_step_completed())
      CHECK(ev.step_completed().worker_id() == "fast");
}

TEST_CASE("a worker process killed with SIGKILL mid-task: another worker "
          "runs the task again") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("survivor", {"lq"}, leased).ok());
  auto id = c.start("wt_lease", "{}");
  child_process child{
    {WORKER_CHILD_BIN, std::to_string(node.grpc_port), "victim", "lq"}};
  auto line = child.wait_for_line("leased ", 20s);
  INFO(child.output());
  REQUIRE(line);
  auto victim_token = line->substr(line->find("leased ") + 7);
  std::this_thread::sleep_for(800ms); // it heartbeats: still leased
  CHECK(c.describe(id).status() == "running");
  child.kill_hard();
  auto t = c.poll_until("survivor", 15s);
  REQUIRE(t);
  CHECK(t->attempt() == 2);
  REQUIRE(c.complete("survivor", t->attempt_token(), R"("rerun")").ok());
  CHECK(c.wait(id, 10s).status() == "completed");
  // The killed worker's late result (replayed) is rejected.
  REQUIRE(c.register_worker("victim", {"lq"}).ok());
  auto late = c.complete("victim", victim_token, R"("zombie")");
  CHECK(late.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  auto h = c.history(id);
  CHECK(count_events(h, pc::kStepCompleted) == 1);
  CHECK(count_events(h, pc::kStepProgress) >= 1);
}

namespace {

void tasks_survive_kill(const std::string& store, const std::string& prefix) {
  temp_dir dir;
  std::string queued = prefix + "queued";
  std::string leased_id = prefix + "leased";
  std::string running = prefix + "running";
  std::string old_leased_token;
  std::string old_running_token;
  {
    node_process node{dir.path, store};
    worker_client c{node.grpc_port};
    // wt_crash comes from the node's workflows dir (tests/workers/workflows).
    REQUIRE(c.register_worker("before", {"cq"}, {}, 2).ok());
    for (auto& id : {leased_id, running})
      c.start("wt_crash", R"({"id": ")" + id + R"("})", id);
    for (int i = 0; i < 2; ++i) {
      auto t = c.poll_until("before", 10s);
      REQUIRE(t);
      if (t->execution_id() == leased_id)
        old_leased_token = t->attempt_token();
      else
        old_running_token = t->attempt_token();
    }
    REQUIRE_FALSE(old_leased_token.empty());
    REQUIRE_FALSE(old_running_token.empty());
    REQUIRE(c.heartbeat("before", old_running_token, R"({"pct": 50})").ok());
    // Queued: nobody polls for it before the crash.
    c.start("wt_crash", R"({"id": ")" + queued + R"("})", queued);
    node.process().kill_hard();
  }
  node_process node{dir.path, store};
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("after", {"cq"}, {}, 3).ok());
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    auto t = c.poll_until("after", 15s);
    REQUIRE(t);
    seen.insert(t->execution_id());
    REQUIRE(c.complete("after", t->attempt_token(), R"({"by": "after"})").ok());
  }
  CHECK(seen == std::set<std::string>{queued, leased_id, running});
  // The worker of before the crash replays its results: rejected.
  REQUIRE(c.register_worker("before", {"cq"}).ok());
  CHECK(
    c.complete("before", old_running_token, R"({"by": "before"})").error_code()
    == grpc::StatusCode::FAILED_PRECONDITION);
  for (auto& id : {queued, leased_id, running}) {
    auto info = c.wait(id, 10s);
    CHECK(info.status() == "completed");
    auto h = c.history(id);
    CHECK(count_events(h, pc::kStepCompleted) == 1);
    for (auto& ev : h)
      if (ev.has_step_completed())
        CHECK(ev.step_completed().worker_id() == "after");
  }
}

} // namespace

TEST_CASE("tasks survive a node kill -9 when queued, leased and mid-run and "
          "complete exactly once") {
  tasks_survive_kill("", "");
}

TEST_CASE("tasks survive a node kill -9 on PostgreSQL") {
  const char* pg = std::getenv("CEREBELUM_TEST_PG");
  INFO("CEREBELUM_TEST_PG is not set: run the tests with ./cerebelum.sh test, "
       "which starts a throwaway PostgreSQL");
  REQUIRE(pg != nullptr);
  REQUIRE(*pg != '\0');
  tasks_survive_kill(pg, "wk" + unique_prefix());
}

TEST_CASE("retries of a task wait the exact delays of the retry policy") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("w", {"bq"}, backoff).ok());
  auto id = c.start("wt_backoff", "{}");
  for (int i = 0; i < 2; ++i) {
    auto t = c.poll_until("w", 10s);
    REQUIRE(t);
    CHECK(t->attempt() == static_cast<std::uint32_t>(i + 1));
    REQUIRE(c.fail("w", t->attempt_token(), "flaky", true).ok());
  }
  auto t = c.poll_until("w", 10s);
  REQUIRE(t);
  CHECK(t->attempt() == 3);
  REQUIRE(c.complete("w", t->attempt_token(), "3").ok());
  CHECK(c.wait(id, 10s).status() == "completed");
  // step_failed(n) -> timer (fire_at - failed time == the policy's delay) ->
  // step_scheduled(n + 1) no earlier than fire_at.
  auto h = c.history(id);
  std::vector<std::int64_t> failed_at;
  std::vector<std::int64_t> delays;
  std::vector<std::int64_t> fire_at;
  std::vector<std::int64_t> scheduled_at;
  for (auto& ev : h) {
    if (ev.has_step_failed()) failed_at.push_back(ev.recorded_at_ms());
    if (ev.has_diverge_taken())
      delays.push_back(ev.diverge_taken().retry_delay_ms());
    if (ev.has_timer_started())
      fire_at.push_back(ev.timer_started().fire_at_ms());
    if (ev.has_step_scheduled()) scheduled_at.push_back(ev.recorded_at_ms());
  }
  REQUIRE(failed_at.size() == 2);
  CHECK(delays == std::vector<std::int64_t>{300, 600});
  REQUIRE(fire_at.size() == 2);
  REQUIRE(scheduled_at.size() == 3);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(fire_at[i] - failed_at[i] == delays[i]);
    CHECK(scheduled_at[i + 1] >= fire_at[i]);
    CHECK(scheduled_at[i + 1] - fire_at[i] < 500);
  }
}

TEST_CASE("a task failure that fails the execution is a dead letter, "
          "dlq list and dlq retry resume it") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("w", {"dq"}, fragile).ok());
  auto id = c.start("wt_fragile", R"({"x": 7})");
  auto t = c.poll_until("w", 10s);
  REQUIRE(t);
  REQUIRE(c.fail("w", t->attempt_token(), "broken", false).ok());
  CHECK(c.wait(id, 10s).status() == "failed");

  auto listed = node.cli({"dlq", "list", "--json"});
  INFO(listed.output);
  REQUIRE(listed.code == 0);
  auto js = listed.json();
  REQUIRE(js["dead_letters"].size() == 1);
  auto dl = js["dead_letters"][0];
  CHECK(dl["execution_id"] == id);
  CHECK(dl["step"] == "once");
  CHECK(dl["queue"] == "dq");
  CHECK(dl["workflow"] == "wt_fragile");
  CHECK(dl["error"]["kind"] == "broken");
  CHECK(dl["input"] == nlohmann::json{{"x", 7}});
  auto other = node.cli({"dlq", "list", "--queue", "elsewhere", "--json"});
  REQUIRE(other.code == 0);
  CHECK(other.json()["dead_letters"].empty());
  auto dl_id = dl["id"].is_string() ? dl["id"].get<std::string>()
                                    : std::to_string(dl["id"].get<long>());

  auto missing = node.cli({"dlq", "retry", "999999", "--by", "ops"});
  CHECK(missing.code == 1);
  CHECK_THAT(missing.output, Catch::Contains("999999"));
  auto usage = node.cli({"dlq", "retry", dl_id});
  CHECK(usage.code == 2);

  auto retried = node.cli({"dlq", "retry", dl_id, "--by", "ops", "--json"});
  INFO(retried.output);
  REQUIRE(retried.code == 0);
  auto t2 = c.poll_until("w", 10s);
  REQUIRE(t2);
  CHECK(t2->attempt() == 2);
  REQUIRE(c.complete("w", t2->attempt_token(), R"({"fixed": 1})").ok());
  CHECK(c.wait(id, 10s).status() == "completed");
  auto after = node.cli({"dlq", "list", "--json"});
  REQUIRE(after.code == 0);
  CHECK(after.json()["dead_letters"].empty());
  // Retried already: the dead letter is gone.
  CHECK(node.cli({"dlq", "retry", dl_id, "--by", "ops"}).code == 1);
  auto h = c.history(id);
  CHECK(count_events(h, pc::kExecutionResumed) == 1);
}

TEST_CASE("bad worker requests get clear gRPC statuses") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("w", {"q"}, two_tasks).ok());
  std::optional<worker::Task> t;

  auto st = c.poll("w", t, 100ms, {"nope"});
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK_THAT(st.error_message(), Catch::Contains("nope"));

  st = c.poll("ghost", t, 100ms);
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK_THAT(st.error_message(), Catch::Contains("ghost"));

  st = c.complete("w", "12:not-a-token", "1");
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  st = c.complete("w", "garbage", "1");
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(st.error_message(), Catch::Contains("garbage"));

  st = c.register_worker("", {"q"});
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  st = c.register_worker("w2", {});
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  st = c.register_worker("w3", {"q"}, "name: broken\nsteps:\n  - name: x\n");
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(st.error_message(), Catch::Contains("test.yaml"));

  auto id = c.start("wt_two", R"({"n": 1})");
  auto task = c.poll_until("w", 10s);
  REQUIRE(task);
  st = c.complete("w", task->attempt_token(), "{not json");
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(st.error_message(), Catch::Contains("JSON"));
  st = c.heartbeat("w", task->attempt_token(), "{oops");
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  // Another worker cannot complete it.
  REQUIRE(c.register_worker("thief", {"q"}).ok());
  st = c.complete("thief", task->attempt_token(), "1");
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  // The lease holder still can.
  REQUIRE(c.complete("w", task->attempt_token(), R"({"m": 2})").ok());
  // A result over the node's payload limit is recorded as the step's
  // failure (payload_too_large, not retryable), naming the size and the
  // limit; it is not refused (a refusal left the lease to expire and the
  // task to run again).
  auto second = c.poll_until("w", 10s);
  REQUIRE(second);
  std::string big = "\"" + std::string(1024 * 1024 + 10, 'x') + "\"";
  REQUIRE(c.complete("w", second->attempt_token(), big).ok());
  auto done = c.wait(id, 10s);
  CHECK(done.status() == "failed");
  CHECK(done.error().kind() == "payload_too_large");
  CHECK_THAT(done.error().message(), Catch::Contains("limit"));
}

TEST_CASE("an execution of a worker-registered workflow survives a node kill "
          "-9: it resumes on its stored definition and its task waits for "
          "the worker") {
  temp_dir dir;
  std::string id;
  std::string token_b;
  std::string task_b;
  {
    node_process node{dir.path};
    worker_client c{node.grpc_port};
    REQUIRE(c.register_worker("w1", {"pq"}, parked_flow).ok());
    id = c.start("wt_parked", R"({"n": 1})");
    auto ta = c.poll_until("w1", 10s);
    REQUIRE(ta);
    REQUIRE(ta->step() == "a");
    REQUIRE(c.complete("w1", ta->attempt_token(), R"({"m": 2})").ok());
    // Mid-step: b is leased to w1 when the node dies.
    auto tb = c.poll_until("w1", 10s);
    REQUIRE(tb);
    REQUIRE(tb->step() == "b");
    token_b = tb->attempt_token();
    task_b = tb->task_id();
    node.process().kill_hard();
  }
  node_process node{dir.path};
  worker_client c{node.grpc_port};
  // No worker for a while: the resurrector respawns the execution on the
  // definition stored with its start; its task waits for a worker.
  std::this_thread::sleep_for(3s);
  auto info = c.describe(id);
  CHECK(info.status() == "running");
  auto h = c.history(id);
  CHECK(count_events(h, pc::kExecutionFailed) == 0);
  CHECK(count_events(h, pc::kStepCompleted) == 1);
  // The worker comes back: the task leased before the kill is offered
  // again.
  REQUIRE(c.register_worker("w1", {"pq"}, parked_flow).ok());
  auto tb = c.poll_until("w1", 15s);
  REQUIRE(tb);
  CHECK(tb->execution_id() == id);
  CHECK(tb->step() == "b");
  // The same attempt, under a new lease: its token carries a new secret.
  CHECK(tb->task_id() == task_b);
  CHECK(tb->attempt_token() != token_b);
  CHECK(nlohmann::json::parse(tb->input_json()) == nlohmann::json{{"m", 2}});
  auto st = c.complete("w1", tb->attempt_token(), R"({"done": 3})");
  INFO(st.error_message());
  REQUIRE(st.ok());
  info = c.wait(id, 15s);
  CHECK(info.status() == "completed");
  CHECK(nlohmann::json::parse(info.result_json())
        == nlohmann::json{{"done", 3}});
  h = c.history(id);
  CHECK(count_events(h, pc::kStepCompleted, "a") == 1);
  CHECK(count_events(h, pc::kStepCompleted, "b") == 1);
  CHECK(count_events(h, pc::kExecutionFailed) == 0);
}

TEST_CASE("a sleep of a worker-registered workflow that ends before the "
          "worker registers again fires on the stored definition, and its "
          "task waits for the worker") {
  temp_dir dir;
  std::string id;
  {
    node_process node{dir.path};
    worker_client c{node.grpc_port};
    REQUIRE(c.register_worker("s1", {"psq"}, parked_sleep_flow).ok());
    id = c.start("wt_parked_sleep", "{}");
    REQUIRE(c.describe(id).status() == "sleeping");
    node.process().kill_hard();
  }
  node_process node{dir.path};
  worker_client c{node.grpc_port};
  // The timer fires while nobody has registered the workflow: the execution
  // runs on the definition stored with its start and schedules its task.
  std::this_thread::sleep_for(4s);
  CHECK(c.describe(id).status() == "running");
  auto h = c.history(id);
  CHECK(count_events(h, pc::kTimerFired) == 1);
  CHECK(count_events(h, pc::kExecutionFailed) == 0);
  // The worker registers again and gets the task.
  REQUIRE(c.register_worker("s1", {"psq"}, parked_sleep_flow).ok());
  auto t = c.poll_until("s1", 15s);
  REQUIRE(t);
  CHECK(t->execution_id() == id);
  CHECK(t->step() == "after");
  REQUIRE(c.complete("s1", t->attempt_token(), R"({"ok": true})").ok());
  auto info = c.wait(id, 15s);
  CHECK(info.status() == "completed");
  CHECK(nlohmann::json::parse(info.result_json())
        == nlohmann::json{{"ok", true}});
  h = c.history(id);
  CHECK(count_events(h, pc::kTimerFired) == 1);
  CHECK(count_events(h, pc::kStepCompleted, "after") == 1);
}

TEST_CASE("a PollTask cancelled by its caller ends its poll in the router: "
          "the next poll gets the next task at once") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("w", {"q"}, two_tasks).ok());
  auto channel
    = grpc::CreateChannel("127.0.0.1:" + std::to_string(node.grpc_port),
                          grpc::InsecureChannelCredentials());
  auto stub = worker::WorkerService::NewStub(channel);
  grpc::ClientContext ctx;
  worker::PollTaskRequest req;
  req.set_worker_id("w");
  req.set_wait_ms(60'000);
  worker::PollTaskResponse res;
  auto pending = std::async(std::launch::async, [&] {
    return stub->PollTask(&ctx, req, &res);
  });
  // Cancel once the call is on its way; the answer is the event waited for.
  REQUIRE(pending.wait_for(300ms) == std::future_status::timeout);
  ctx.TryCancel();
  REQUIRE(pending.wait_for(10s) == std::future_status::ready);
  CHECK(pending.get().error_code() == grpc::StatusCode::CANCELLED);
  // Had the cancelled poll stayed in the router, it would take this task
  // (max_in_flight 1) and the poll below would wait for the lease to end.
  c.start("wt_two", R"({"n": 1})");
  std::optional<worker::Task> t;
  auto start = std::chrono::steady_clock::now();
  REQUIRE(c.poll("w", t, 10s).ok());
  REQUIRE(t);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("a waiting PollTask ends with UNAVAILABLE when the node stops, not "
          "at the end of its wait") {
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("w", {"q"}, two_tasks).ok());
  auto start = std::chrono::steady_clock::now();
  auto pending = std::async(std::launch::async, [&] {
    std::optional<worker::Task> t;
    return c.poll("w", t, 60s);
  });
  REQUIRE(pending.wait_for(300ms) == std::future_status::timeout);
  node.process().signal(SIGTERM);
  REQUIRE(pending.wait_for(30s) == std::future_status::ready);
  auto st = pending.get();
  // The node's own answer (not a dropped connection, not a call cancelled
  // by the server's shutdown deadline).
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(st.error_message(), Catch::Contains("PollTask"));
  CHECK(std::chrono::steady_clock::now() - start < 30s);
  REQUIRE(node.process().wait_exit(30s));
}
