// Table-driven decider tests of remote-worker features: a task attempt that
// suspends itself (durable sleep, approval) and is resumed as a new attempt
// carrying resume_json; execution_resumed (dead-letter retry) with a fresh
// retry budget; dead_letter(); step_progress and worker ids as no-ops; lease
// and heartbeat failures as ordinary retryable failures.
#include <limits>

#include <catch2/catch.hpp>

#include "tests/workflow/support.hpp"

using namespace cerebelum::workflow;
using cerebelum::workflow::test::harness;
using cerebelum::workflow::test::must_load;

namespace ev = cerebelum::events;

namespace {

const char* const remote = R"y(
name: remote
steps:
  - name: prepare
    set: { n: "1" }
  - name: work
    task: jobs.work
    queue: jobs
    input: { n: "steps.prepare.n" }
    timeout: 1m
    retry: { max_attempts: 2, initial_interval: 1s }
  - name: done
    log: "done"
)y";

/// The events after the first `skip` ones.
std::vector<std::string> tail(const harness& h, std::size_t skip) {
  auto all = h.events();
  return {all.begin() + static_cast<std::ptrdiff_t>(skip), all.end()};
}

/// The resume_json of the latest step_scheduled of `step`.
json last_resume(const harness& h, const std::string& step,
                 int map_index = -1) {
  const auto& hist = h.history();
  for (auto it = hist.rbegin(); it != hist.rend(); ++it)
    if (it->has_step_scheduled() && it->step_scheduled().step() == step
        && it->step_scheduled().map_index() == map_index)
      return parse_json_text(it->step_scheduled().resume_json());
  FAIL("no step_scheduled of " << step);
  return nullptr;
}

/// `events` with their seq and recorded time stripped (to compare folds).
json snapshot_without_seq(const execution_state& s) {
  auto j = s.snapshot();
  j.erase("next_seq");
  return j;
}

} // namespace

TEST_CASE("a sleep suspension arms a step_resume timer and resumes as a new "
          "attempt with resume_json") {
  harness h{must_load(remote)};
  h.run_all({"suspend work wake sleep 5000"});
  // prepare (2 events), work scheduled + its step_timeout timer.
  CHECK(tail(h, 4)
        == std::vector<std::string>{"suspended work a1 wake",
                                    "timer step_resume work @6000"});
  auto s = h.state();
  CHECK(s.status() == execution_status::sleeping);
  CHECK(s.outstanding().empty());
  // The attempt's start-to-close timer went with the attempt.
  REQUIRE(s.timers().size() == 1);
  CHECK(s.timers()[0].purpose == "step_resume");
  CHECK(s.timers()[0].id.rfind("resume:work/v1/a1/", 0) == 0);
  CHECK(s.next_wake_ms() == 6000);
  CHECK(h.commands().back() == "timer step_resume work @6000");

  h.run("fire work");
  auto ev = h.events();
  CHECK(ev[ev.size() - 2] == "scheduled work a2 resume {\"wake\":true}");
  CHECK(ev.back() == "timer step_timeout work @66000");
  CHECK(h.commands()[h.commands().size() - 2]
        == "run task jobs.work work a2 {\"n\":1} resume {\"wake\":true}");
  CHECK(h.state().status() == execution_status::running);
  CHECK(h.outstanding("work").attempt == 2);

  h.run("ok work {\"r\":1}");
  CHECK(h.state().status() == execution_status::completed);
  CHECK(h.state().results()["work"] == json{{"r", 1}});
}

TEST_CASE("a suspension does not consume the retry budget") {
  // max_attempts 2: attempt 1 suspends, attempt 2 is the first try that
  // fails, so one retry is still allowed (attempt 3); attempt 3 failing
  // exhausts the two tries.
  harness h{must_load(remote)};
  h.run_all(
    {"suspend work wake sleep 5000", "fire work", "err work flaky retryable"});
  auto ev = h.events();
  CHECK(ev[ev.size() - 2] == "diverge work retry +1000ms");
  h.run("fire work");
  CHECK(h.outstanding("work").attempt == 3);
  CHECK(last_resume(h, "work") == json{{"wake", true}}); // kept on a retry
  h.run("err work flaky retryable");
  ev = h.events();
  CHECK(ev[ev.size() - 2] == "diverge work fail");
  CHECK(ev.back() == "execution failed flaky");
  CHECK(
    h.state().error()->message.rfind("step 'work' failed after 2 attempts", 0)
    == 0);
}

TEST_CASE("a late result of the suspended attempt is rejected") {
  harness h{must_load(remote)};
  h.run_all({"suspend work wake sleep 5000"});
  auto token = h.stale("work").token;
  CHECK_FALSE(h.state().accepts_result(token));
  h.run("late work 99");
  auto s = h.state();
  CHECK_FALSE(s.results().contains("work"));
  CHECK(s.status() == execution_status::sleeping);
  CHECK(s.timers().size() == 1);
}

TEST_CASE("approval suspensions: granted, rejected, timed out") {
  struct row {
    const char* name;
    std::vector<std::string> script;
    std::vector<std::string> expected_tail;
    execution_status status;
    const char* dead_letter_kind; // "" when none
  };
  const std::vector<row> rows{
    {"granted with data",
     {"grant work {\"note\":\"fine\"}"},
     {"granted work", "scheduled work a2 resume {\"ok\":{\"note\":\"fine\"}}",
      "timer step_timeout work @61000"},
     execution_status::running,
     ""},
    {"granted without data",
     {"grant work"},
     {"granted work", "scheduled work a2 resume {\"ok\":true}",
      "timer step_timeout work @61000"},
     execution_status::running,
     ""},
    {"rejected",
     {"reject work"},
     {"rejected work", "failed work approval_rejected", "diverge work fail",
      "execution failed approval_rejected"},
     execution_status::failed,
     "approval_rejected"},
    {"timed out by its timer",
     {"fire work"},
     {"fired approval:<token>", "approval timed out work",
      "failed work approval_timeout", "diverge work fail",
      "execution failed approval_timeout"},
     execution_status::failed,
     "approval_timeout"},
    {"timed out by an approval_timed_out input",
     {"timeout work"},
     {"approval timed out work", "failed work approval_timeout",
      "diverge work fail", "execution failed approval_timeout"},
     execution_status::failed,
     "approval_timeout"},
  };
  for (const auto& r : rows) {
    SECTION(r.name) {
      harness h{must_load(remote)};
      h.run_all({"suspend work ok approval 30000 {\"amount\":5}"});
      CHECK(tail(h, 4)
            == std::vector<std::string>{"suspended work a1 ok",
                                        "approval requested work",
                                        "timer approval_timeout work @31000"});
      auto s = h.state();
      CHECK(s.status() == execution_status::awaiting_approval);
      REQUIRE(s.approval());
      CHECK(s.approval()->step == "work");
      CHECK(s.approval()->data == json{{"amount", 5}});
      CHECK(s.approval()->timeout_ms == 30000);
      CHECK(h.commands()[h.commands().size() - 2]
            == "approval work {\"amount\":5}");
      auto suspended_token = h.stale("work").token;
      auto before = h.events().size();
      h.run_all(r.script);
      auto got = tail(h, before);
      auto want = r.expected_tail;
      for (auto& w : want)
        if (w == "fired approval:<token>")
          w = "fired approval:" + suspended_token;
      CHECK(got == want);
      auto after = h.state();
      CHECK(after.status() == r.status);
      CHECK_FALSE(after.approval());
      CHECK(after.approvals().empty());
      auto dl = after.dead_letter();
      if (*r.dead_letter_kind) {
        REQUIRE(dl);
        CHECK(dl->error.kind == r.dead_letter_kind);
        CHECK_FALSE(dl->error.retryable);
        CHECK(dl->error.details["wait_key"] == "ok");
        CHECK(dl->attempt_token == suspended_token);
      } else {
        CHECK_FALSE(dl);
        CHECK(after.timers().size() == 1); // the new attempt's timeout
      }
    }
  }
}

TEST_CASE("two suspensions in one step accumulate their keys") {
  harness h{must_load(remote)};
  h.run_all({"suspend work cool sleep 1000", "fire work",
             "suspend work boss approval 0 {\"q\":1}",
             "grant work {\"by\":\"ann\"}"});
  CHECK(h.outstanding("work").attempt == 3);
  CHECK(last_resume(h, "work")
        == json{{"cool", true}, {"boss", {{"by", "ann"}}}});
  // No approval timeout was asked for: no timer besides the step timeout.
  auto ev = h.events();
  CHECK(std::count_if(ev.begin(), ev.end(),
                      [](const std::string& e) {
                        return e.rfind("timer approval_timeout", 0) == 0;
                      })
        == 0);
  h.run("ok work 7");
  CHECK(h.state().result()["work"] == 7);
}

TEST_CASE("invalid suspensions fail the attempt with invalid_suspension") {
  struct row {
    const char* name;
    std::string line;
  };
  const std::vector<row> rows{
    {"neither sleep nor approval", "suspend work k sleep 0"},
    {"negative sleep", "suspend work k sleep -5"},
    {"a key already resumed", "suspend work wake sleep 10"},
  };
  for (const auto& r : rows) {
    SECTION(r.name) {
      harness h{must_load(remote)};
      h.run_all({"suspend work wake sleep 5000", "fire work"});
      h.run(r.line);
      auto ev = h.events();
      CHECK(ev[ev.size() - 3] == "failed work invalid_suspension");
      CHECK(ev.back() == "execution failed invalid_suspension");
      auto dl = h.state().dead_letter();
      REQUIRE(dl);
      CHECK(dl->error.kind == "invalid_suspension");
    }
  }
}

TEST_CASE("a suspension of a call step or of an old attempt is ignored") {
  auto def = must_load(R"y(
name: c
steps:
  - name: a
    call: f
)y");
  harness h{def};
  h.decide();
  h.run("suspend a k sleep 100");
  CHECK(h.state().outstanding().size() == 1);
  CHECK(h.state().timers().empty());
  h.run("ok a 1");
  CHECK(h.state().status() == execution_status::completed);
}

TEST_CASE("task steps of a parallel group suspend independently") {
  auto def = must_load(R"y(
name: par
steps:
  - name: both
    parallel:
      - { name: x, task: t.x, queue: q }
      - { name: y, task: t.y, queue: q }
      - { name: z, task: t.z, queue: q }
  - name: after
    set: { x: "steps.x", y: "steps.y", z: "steps.z" }
)y");
  harness h{def};
  h.run_all({"suspend x kx approval 0 \"x?\"", "suspend y ky approval 0 \"y?\"",
             "suspend z kz sleep 500"});
  auto s = h.state();
  REQUIRE(s.approvals().size() == 2);
  CHECK(s.approval()->step == "x"); // the oldest is decided first
  CHECK(s.approvals()[1].step == "y");
  CHECK(s.approvals()[1].data == "y?");
  CHECK(s.status() == execution_status::awaiting_approval);
  h.run("grant y 2");
  CHECK(h.outstanding("y").attempt == 2);
  CHECK(last_resume(h, "y") == json{{"ky", 2}});
  CHECK(h.state().approval()->step == "x");
  CHECK(h.state().status() == execution_status::running);
  h.run_all({"ok y \"Y\"", "fire z", "grant x", "ok z \"Z\"", "ok x \"X\""});
  auto done = h.state();
  CHECK(done.status() == execution_status::completed);
  CHECK(done.results()["after"] == json{{"x", "X"}, {"y", "Y"}, {"z", "Z"}});
  CHECK(last_resume(h, "x") == json{{"kx", true}});
  CHECK(last_resume(h, "z") == json{{"kz", true}});
}

TEST_CASE("map children of tasks suspend and resume by map index") {
  auto def = must_load(R"y(
name: m
steps:
  - name: each
    map: { over: "[10, 20, 30]" }
    task: t.each
    queue: q
    input: { v: "item" }
)y");
  harness h{def};
  h.run_all({"suspend each[1] nap sleep 100",
             "suspend each[0] ok approval 0 {\"i\":0}",
             "suspend each[2] ok approval 0 {\"i\":2}"});
  auto s = h.state();
  REQUIRE(s.approvals().size() == 2);
  CHECK(s.approvals()[0].map_index == 0);
  CHECK(s.approvals()[1].map_index == 2);
  CHECK(s.outstanding().empty());
  // A grant answers the oldest approval of the step: child 0.
  h.run("grant each \"first\"");
  CHECK(h.outstanding("each", 0).attempt == 2);
  CHECK(last_resume(h, "each", 0) == json{{"ok", "first"}});
  CHECK(h.state().approvals().size() == 1);
  h.run("reject each");
  // Child 2 failed (approval_rejected is not retryable): the map fails.
  auto ev = h.events();
  CHECK(std::find(ev.begin(), ev.end(), "failed each[2] approval_rejected")
        != ev.end());
  CHECK(ev.back() == "execution failed approval_rejected");
  auto dl = h.state().dead_letter();
  REQUIRE(dl);
  CHECK(dl->step == "each");
  CHECK(dl->map_index == 2);
  CHECK(dl->input == json{{"v", 30}});
  CHECK(dl->task_queue == "q");
  CHECK(dl->target == "t.each");
  // The operator retries it: child 2 starts again, children 0 and 1 (whose
  // work was abandoned with the failure) get new attempts too.
  h.run("resume each[2]");
  auto r = h.state();
  CHECK(r.status() == execution_status::running);
  CHECK_FALSE(r.dead_letter());
  CHECK(h.outstanding("each", 2).attempt == 2);
  CHECK(last_resume(h, "each", 2) == json{}); // its wait never resumed
  CHECK(h.outstanding("each", 0).attempt == 3);
  CHECK(last_resume(h, "each", 0) == json{{"ok", "first"}});
  CHECK(h.outstanding("each", 1).attempt == 2);
  h.run_all({"ok each[0] 0", "ok each[1] 1", "ok each[2] 2"});
  CHECK(h.state().result()["each"] == json{0, 1, 2});
}

TEST_CASE("execution_resumed retries the failed task with a fresh budget") {
  harness h{must_load(remote)};
  h.run_all(
    {"err work flaky retryable", "fire work", "err work flaky retryable"});
  auto failed = h.state();
  REQUIRE(failed.status() == execution_status::failed);
  auto dl = failed.dead_letter();
  REQUIRE(dl);
  CHECK(dl->step == "work");
  CHECK(dl->map_index == -1);
  CHECK(dl->attempt == 2);
  CHECK(dl->attempt_token == h.stale("work").token);
  CHECK(dl->task_queue == "jobs");
  CHECK(dl->target == "jobs.work");
  CHECK(dl->input == json{{"n", 1}});
  CHECK(dl->error.kind == "flaky");
  CHECK(dl->error.retryable);
  CHECK(dl->error.message == "boom: flaky"); // the step's own error

  auto before = h.events().size();
  h.run("resume work");
  CHECK(tail(h, before)
        == std::vector<std::string>{"execution resumed work",
                                    "scheduled work a3",
                                    "timer step_timeout work @62000"});
  auto s = h.state();
  CHECK(s.status() == execution_status::running);
  CHECK_FALSE(s.error());
  CHECK_FALSE(s.dead_letter());
  CHECK(s.results()["prepare"] == json{{"n", 1}}); // kept
  CHECK(h.commands().back().rfind("timer step_timeout", 0) == 0);
  // Fresh budget: one failure is retried again (max_attempts 2).
  h.run("err work flaky retryable");
  auto ev = h.events();
  CHECK(ev[ev.size() - 2] == "diverge work retry +1000ms");
  h.run_all({"fire work", "ok work {\"fine\":true}"});
  CHECK(h.state().status() == execution_status::completed);
  CHECK(h.state().results()["work"] == json{{"fine", true}});
}

TEST_CASE("execution_resumed is refused unless that step failed the "
          "execution") {
  struct row {
    const char* name;
    std::vector<std::string> script;
    const char* line;
    const char* message;
  };
  const std::vector<row> rows{
    {"running", {}, "resume work", "while the execution is running"},
    {"completed",
     {"ok work 1"},
     "resume work",
     "while the execution is completed"},
    {"cancelled",
     {"cancel"},
     "resume work",
     "while the execution is cancelled"},
    {"another step", {"err work fatal"}, "resume prepare", "did not fail"},
    {"resumed twice",
     {"err work fatal", "resume work"},
     "resume work",
     "while the execution is running"},
  };
  for (const auto& r : rows) {
    SECTION(r.name) {
      harness h{must_load(remote)};
      h.run_all(r.script);
      auto hist = h.history();
      ev::Event e;
      auto* x = e.mutable_execution_resumed();
      std::string step = std::string{r.line}.substr(7);
      x->set_step(step);
      x->set_map_index(-1);
      e.set_seq(static_cast<std::int64_t>(hist.size()));
      hist.push_back(e);
      auto d = decide(h.def(), hist, {"ex-1", 5000, {}});
      REQUIRE_FALSE(d.ok());
      CHECK_THAT(d.error().message, Catch::Contains(r.message));
    }
  }
}

TEST_CASE("dead_letter is only set for task failures that failed the "
          "execution") {
  auto def = must_load(R"y(
name: d
steps:
  - name: a
    task: t.a
    queue: q
    diverge:
      - kind: soft
        action: continue
  - name: b
    call: f.b
)y");
  SECTION("a continued task failure is no dead letter") {
    harness h{def};
    h.run_all({"err a soft"});
    CHECK_FALSE(h.state().dead_letter());
    h.run("err b fatal");
    // A failed call step fails the execution but is no dead letter.
    CHECK(h.state().status() == execution_status::failed);
    CHECK_FALSE(h.state().dead_letter());
  }
  SECTION("a cancelled execution has none") {
    harness h{def};
    h.run_all({"cancel"});
    CHECK_FALSE(h.state().dead_letter());
  }
  SECTION("an unhandled task failure has one") {
    harness h{def};
    h.run_all({"err a fatal"});
    REQUIRE(h.state().dead_letter());
    CHECK(h.state().dead_letter()->step == "a");
  }
}

TEST_CASE("lease and heartbeat failures are ordinary retryable failures") {
  for (const char* kind :
       {"lease_expired", "worker_lost", "heartbeat_timeout"}) {
    SECTION(kind) {
      // Under a retry policy: retried with the policy's backoff.
      harness h{must_load(remote)};
      h.run_all({std::string{"err work "} + kind + " retryable", "fire work"});
      auto ev = h.events();
      CHECK(std::find(ev.begin(), ev.end(), "diverge work retry +1000ms")
            != ev.end());
      CHECK(h.outstanding("work").attempt == 2);
      // The second one exhausts max_attempts 2 and is a dead letter.
      h.run(std::string{"err work "} + kind + " retryable");
      REQUIRE(h.state().dead_letter());
      CHECK(h.state().dead_letter()->error.kind == kind);
      // Without a retry policy a retryable failure fails the execution
      // (the documented default); a diverge rule can match the kind.
      auto plain = must_load(std::string{R"y(
name: p
steps:
  - name: t
    task: t.t
    queue: q
    diverge:
      - kind: )y"} + kind + R"y(
        retry: { max_attempts: 3, initial_interval: 2s }
)y");
      harness p{plain};
      p.run_all({std::string{"err t "} + kind + " retryable"});
      CHECK(p.events()[2] == "diverge t retry +2000ms");
    }
  }
}

TEST_CASE("a lost attempt is offered again without using the retry budget") {
  const auto plain = std::string{R"y(
name: p
steps:
  - name: t
    task: t.t
    queue: q
  - name: done
    log: "done"
)y"};
  SECTION("a step without a retry policy survives its lost workers") {
    harness h{must_load(plain)};
    // The first re-offer goes at once; the next ones back off (500 ms, 1 s).
    h.run_all({"lost t worker_lost", "lost t lease_expired", "fire t",
               "lost t heartbeat_timeout", "fire t"});
    auto ev = h.events();
    CHECK(std::count(ev.begin(), ev.end(), "diverge t reoffer") == 1);
    CHECK(std::count(ev.begin(), ev.end(), "diverge t reoffer +500ms") == 1);
    CHECK(std::count(ev.begin(), ev.end(), "diverge t reoffer +1000ms") == 1);
    CHECK(h.outstanding("t").attempt == 4);
    // The fold of the recorded history counts re-offers, not failures.
    CHECK(h.state().runtime(0).self.reoffers == 3);
    CHECK(h.state().runtime(0).self.failures == 0);
    h.run("ok t 7");
    CHECK(h.state().status() == execution_status::completed);
  }
  SECTION("the step's own failures still use its budget") {
    harness h{must_load(remote)};
    h.run_all({"lost work worker_lost", "lost work worker_lost", "fire work",
               "err work flaky retryable", "fire work"});
    // Two losses and one failure: the policy (max_attempts 2) allows one
    // more try.
    CHECK(h.outstanding("work").attempt == 4);
    h.run("err work flaky retryable");
    CHECK(h.state().status() == execution_status::failed);
  }
  SECTION("past the node's bound a loss is an ordinary failure") {
    harness h{must_load(plain)};
    h.reoffers.max_reoffers = 2;
    h.run_all({"lost t worker_lost", "lost t worker_lost", "fire t",
               "lost t worker_lost"});
    CHECK(h.state().status() == execution_status::failed);
    REQUIRE(h.state().error());
    CHECK(h.state().error()->message.find("(2 lost attempts offered again)")
          != std::string::npos);
    CHECK(h.state().error()->kind == "worker_lost");
    REQUIRE(h.state().dead_letter());
  }
  SECTION("with no re-offers the step's policy decides at once") {
    harness h{must_load(plain)};
    h.reoffers.max_reoffers = 0;
    h.run_all({"lost t lease_expired"});
    CHECK(h.state().status() == execution_status::failed);
  }
  SECTION("a worker's own report of a lost kind is the step's failure") {
    harness h{must_load(plain)};
    h.run_all({"err t worker_lost retryable"});
    CHECK(h.state().status() == execution_status::failed);
  }
  SECTION("map children are offered again one by one") {
    harness h{must_load(R"y(
name: m
steps:
  - name: each
    map: { over: "input.items" }
    task: t.t
    queue: q
)y"),
              json{{"items", json::array({1, 2})}}};
    h.run_all({"lost each[1] worker_lost", "ok each[0] 10"});
    REQUIRE(h.state().runtime(0).children.size() == 2);
    CHECK(h.state().runtime(0).children[1].reoffers == 1);
    CHECK(h.state().runtime(0).children[0].reoffers == 0);
    CHECK(h.outstanding("each", 1).attempt == 2);
    h.run("ok each[1] 20");
    CHECK(h.state().status() == execution_status::completed);
  }
  SECTION("the delays double up to the cap") {
    reoffer_policy p;
    CHECK(p.delay_ms(1) == 0);
    CHECK(p.delay_ms(2) == 500);
    CHECK(p.delay_ms(3) == 1000);
    CHECK(p.delay_ms(6) == 8000);
    CHECK(p.delay_ms(7) == 10000);
    CHECK(p.delay_ms(40) == 10000);
  }
}

TEST_CASE("step_progress and worker ids do not change the state") {
  harness a{must_load(remote)};
  harness b{must_load(remote)};
  a.run_all({"ok work 1"});
  b.run_all({"progress work {\"pct\":50}", "progress work", "ok work 1"});
  CHECK(snapshot_without_seq(a.state()) == snapshot_without_seq(b.state()));
  auto ev = b.events();
  CHECK(std::count(ev.begin(), ev.end(), "progress work") == 2);
  // A worker id on a result is history only.
  harness c{must_load(remote)};
  c.decide();
  auto o = c.outstanding("work");
  ev::Event done;
  auto* x = done.mutable_step_completed();
  x->set_step("work");
  x->set_attempt(o.attempt);
  x->set_attempt_token(o.token);
  x->set_result_json("1");
  x->set_map_index(-1);
  x->set_worker_id("w-9");
  c.append(done);
  c.decide();
  CHECK(snapshot_without_seq(c.state()) == snapshot_without_seq(a.state()));
}

TEST_CASE("resume commands after a restart re-issue suspension waits and the "
          "resume of the current attempt") {
  harness h{must_load(remote)};
  h.run_all({"suspend work nap sleep 9000"});
  auto sleeping = resume_commands(h.state());
  REQUIRE(sleeping.size() == 1);
  const auto& t = std::get<start_timer_command>(sleeping[0]);
  CHECK(t.purpose == "step_resume");
  CHECK(t.fire_at_ms == 10000);
  h.run_all({"fire work", "suspend work ok approval 500 {\"x\":1}"});
  auto waiting = resume_commands(h.state());
  REQUIRE(waiting.size() == 2);
  CHECK(std::get<start_timer_command>(waiting[0]).purpose
        == "approval_timeout");
  CHECK(std::get<request_approval_command>(waiting[1]).data == json{{"x", 1}});
  h.run("grant work");
  auto running = resume_commands(h.state());
  REQUIRE(running.size() == 2); // the run and its step timeout
  const auto& run = std::get<run_step_command>(running[0]);
  CHECK(run.attempt == 3);
  CHECK(run.resume == json{{"nap", true}, {"ok", true}});
  CHECK(run.kind == step_kind::task);
  CHECK(run.task_queue == "jobs");
}

TEST_CASE("cancelling a suspended execution drops its waits") {
  harness h{must_load(remote)};
  h.run_all({"suspend work ok approval 1000", "cancel"});
  auto s = h.state();
  CHECK(s.status() == execution_status::cancelled);
  CHECK(s.timers().empty());
  CHECK_FALSE(s.approval());
}

TEST_CASE("execution_resumed in a parallel group restarts the abandoned "
          "members") {
  auto def = must_load(R"y(
name: g
steps:
  - name: both
    parallel:
      - { name: a, task: t.a, queue: q }
      - { name: b, task: t.b, queue: q, timeout: 10s }
      - { name: c, task: t.c, queue: q }
)y");
  harness h{def};
  h.run_all({"suspend c k approval 0", "err a fatal"});
  auto failed = h.state();
  REQUIRE(failed.status() == execution_status::failed);
  CHECK(failed.timers().empty());
  CHECK(failed.approvals().empty());
  auto abandoned_b = h.stale("b").token;
  h.run("resume a");
  auto s = h.state();
  CHECK(s.status() == execution_status::running);
  CHECK(h.outstanding("a").attempt == 2);
  CHECK(h.outstanding("b").attempt == 2);
  CHECK(h.outstanding("c").attempt == 2); // asks for its approval again
  CHECK_FALSE(s.accepts_result(abandoned_b));
  REQUIRE(s.timers().size() == 1); // b's new step timeout
  CHECK(s.timers()[0].id == "timeout:" + h.outstanding("b").token);
  h.run_all({"ok a 1", "ok b 2", "ok c 3"});
  CHECK(h.state().result() == json{{"a", 1}, {"b", 2}, {"c", 3}});
}

TEST_CASE("a huge sleep saturates instead of overflowing") {
  harness h{must_load(remote)};
  h.run_all({"suspend work k sleep 9223372036854775000"});
  REQUIRE(h.state().timers().size() == 1);
  CHECK(h.state().timers()[0].fire_at_ms
        == std::numeric_limits<std::int64_t>::max());
}
