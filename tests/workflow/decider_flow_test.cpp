// Table-driven decider tests: a workflow, a script of inputs, and the full
// history the decider must have recorded. Flow: timeline, set/log/fail,
// parallel groups, branches and back-jumps, sleep, cancel.
#include <catch2/catch.hpp>

#include "tests/workflow/support.hpp"

using namespace cerebelum::workflow;
using cerebelum::workflow::test::harness;
using cerebelum::workflow::test::must_load;

namespace {

struct row {
  const char* name;
  const char* yaml;
  json input;
  std::vector<std::string> script;
  std::vector<std::string> history;
  execution_status status;
};

void check(const row& r) {
  INFO(r.name);
  harness h{must_load(r.yaml), r.input};
  auto got = h.run_all(r.script);
  CHECK(got == r.history);
  CHECK(h.state().status() == r.status);
}

const char* const timeline = R"y(
name: timeline
steps:
  - name: a
    call: f.a
    input: { x: "input.x" }
  - name: b
    set: { doubled: "steps.a.v * 2", when: "now()" }
  - name: note
    log: "b gave ${steps.b.doubled}"
)y";

const char* const parallel = R"y(
name: par
steps:
  - name: checks
    parallel:
      - name: inv
        call: f.inv
      - name: fraud
        call: f.fraud
  - name: after
    set: { both: "[steps.inv, steps.fraud]" }
)y";

const char* const branching = R"y(
name: br
steps:
  - name: decide
    set: { big: "input.amount > 100" }
    branch:
      - if: "steps.decide.big"
        goto: review
      - goto: small
  - name: review
    log: review
    branch:
      - goto: end
  - name: small
    log: small
)y";

const char* const loop = R"y(
name: loop
max_iterations: 2
steps:
  - name: poll
    call: f.poll
    branch:
      - if: "steps.poll.done"
        goto: end
      - goto: poll
)y";

const char* const sleeper = R"y(
name: sleeper
steps:
  - name: nap
    sleep: 2s
  - name: nap2
    sleep: { expr: "input.ms" }
  - name: done
    set: "'ok'"
)y";

const char* const failing = R"y(
name: failing
steps:
  - name: boom
    fail: { kind: bad_input, message: "x is ${input.x}" }
  - name: never
    log: never
)y";

} // namespace

TEST_CASE("a timeline runs its steps in order and each sees earlier results") {
  check({"timeline",
         timeline,
         {{"x", 3}},
         {"ok a {\"v\":21}"},
         {"scheduled a a1", "completed a {\"v\":21}", "scheduled b a1",
          "completed b {\"doubled\":42,\"when\":1000}", "scheduled note a1",
          "log info b gave 42", "completed note null",
          "execution completed "
          "{\"a\":{\"v\":21},\"b\":{\"doubled\":42,\"when\":1000},\"note\":"
          "null}"},
         execution_status::completed});
}

TEST_CASE("a parallel group schedules all its steps and joins before the next "
          "stage") {
  check({"parallel",
         parallel,
         {},
         {"ok fraud 2", "ok inv 1"},
         {"scheduled inv a1", "scheduled fraud a1", "completed fraud 2",
          "completed inv 1", "scheduled after a1",
          "completed after {\"both\":[1,2]}",
          "execution completed {\"after\":{\"both\":[1,2]},\"fraud\":2,"
          "\"inv\":1}"},
         execution_status::completed});
}

TEST_CASE("a parallel group does not join while one member is outstanding") {
  harness h{must_load(parallel)};
  h.run_all({"ok inv 1"});
  CHECK(h.state().status() == execution_status::running);
  CHECK(h.state().outstanding().size() == 1);
  CHECK(h.state().outstanding()[0].step == "fraud");
}

TEST_CASE("a branch takes the first true condition") {
  check({"big",
         branching,
         {{"amount", 500}},
         {},
         {"scheduled decide a1", "completed decide {\"big\":true}",
          "branch decide -> review", "scheduled review a1", "log info review",
          "completed review null", "branch review -> end",
          "execution completed {\"decide\":{\"big\":true},\"review\":null}"},
         execution_status::completed});
}

TEST_CASE("a branch falls to its unconditional rule when no condition holds") {
  check({"small",
         branching,
         {{"amount", 5}},
         {},
         {"scheduled decide a1", "completed decide {\"big\":false}",
          "branch decide -> small", "scheduled small a1", "log info small",
          "completed small null",
          "execution completed {\"decide\":{\"big\":false},\"small\":null}"},
         execution_status::completed});
}

TEST_CASE("a back-jump re-runs the step with a fresh attempt token") {
  harness h{must_load(loop)};
  h.run_all({"ok poll {\"done\":false}"});
  auto second = h.outstanding("poll");
  CHECK(second.attempt == 1);
  CHECK(second.token.find("/v2/") != std::string::npos);
  h.run("ok poll {\"done\":true}");
  CHECK(h.events()
        == std::vector<std::string>{
          "scheduled poll a1", "completed poll {\"done\":false}",
          "branch poll -> poll", "jumped poll -> poll #1", "scheduled poll a1",
          "completed poll {\"done\":true}", "branch poll -> end",
          "execution completed {\"poll\":{\"done\":true}}"});
}

TEST_CASE("back-jumps beyond max_iterations fail the execution") {
  harness h{must_load(loop)};
  h.run_all({"ok poll {\"done\":false}", "ok poll {\"done\":false}",
             "ok poll {\"done\":false}"});
  auto ev = h.events();
  CHECK(std::count(ev.begin(), ev.end(), "scheduled poll a1") == 3);
  CHECK(ev.back() == "execution failed max_iterations_exceeded");
  auto s = h.state();
  CHECK(s.status() == execution_status::failed);
  CHECK(s.error()->message.find("max_iterations (2)") != std::string::npos);
  CHECK(s.iterations() == 2);
}

TEST_CASE("a sleep starts a durable timer and completes when it fires") {
  harness h{must_load(sleeper), {{"ms", 500}}};
  h.run_all({});
  CHECK(h.state().status() == execution_status::sleeping);
  CHECK(h.state().next_wake_ms() == 3000);
  CHECK(h.commands() == std::vector<std::string>{"timer sleep nap @3000"});
  h.run("fire nap");
  CHECK(h.state().next_wake_ms() == 3500);
  h.run("fire nap2");
  CHECK(h.events()
        == std::vector<std::string>{
          "scheduled nap a1", "timer sleep nap @3000",
          "fired sleep:" + h.history()[1].step_scheduled().attempt_token(),
          "completed nap null", "scheduled nap2 a1", "timer sleep nap2 @3500",
          "fired sleep:" + h.history()[5].step_scheduled().attempt_token(),
          "completed nap2 null", "scheduled done a1", "completed done \"ok\"",
          "execution completed {\"done\":\"ok\",\"nap\":null,\"nap2\":null}"});
}

TEST_CASE("a sleep whose expression is not a duration fails with "
          "expression_error") {
  harness h{must_load(sleeper), {{"ms", "soon"}}};
  h.run_all({"fire nap"});
  auto ev = h.events();
  CHECK(ev[ev.size() - 3] == "failed nap2 expression_error");
  CHECK(ev.back() == "execution failed expression_error");
}

TEST_CASE("a fail step raises its error kind and fails the execution") {
  check({"fail",
         failing,
         {{"x", 7}},
         {},
         {"scheduled boom a1", "failed boom bad_input", "diverge boom fail",
          "execution failed bad_input"},
         execution_status::failed});
  harness h{must_load(failing), {{"x", 7}}};
  h.run_all({});
  CHECK(h.state().error()->message == "step 'boom' failed: x is 7");
}

TEST_CASE("a cancel request cancels the execution and abandons its steps") {
  harness h{must_load(parallel)};
  h.run_all({"cancel"});
  CHECK(h.events().back() == "execution cancelled");
  CHECK(h.state().status() == execution_status::cancelled);
  CHECK(h.state().outstanding().empty());
  CHECK(h.commands().back() == "finish cancelled");
}

TEST_CASE("a late result after the execution finished changes nothing") {
  harness h{must_load(parallel)};
  h.run_all({"ok inv 1", "cancel", "late inv 5"});
  CHECK(h.events().back() == "completed inv 5");
  CHECK(h.state().status() == execution_status::cancelled);
  CHECK(h.state().results()["inv"] == 1);
}

TEST_CASE("a type error in a set step becomes a step failure of kind "
          "expression_error") {
  auto def = must_load(R"y(
name: t
steps:
  - name: s
    set: { v: "input.a + 1" }
)y");
  harness h{def, {{"a", "text"}}};
  h.run_all({});
  CHECK(h.events()
        == std::vector<std::string>{
          "scheduled s a1", "failed s expression_error", "diverge s fail",
          "execution failed expression_error"});
  CHECK(h.state().error()->message.find("needs numbers") != std::string::npos);
}

TEST_CASE("the output template shapes the execution result") {
  auto def = must_load(R"y(
name: t
output: { total: "steps.a.n + 1", who: "upper(input.who)" }
steps:
  - name: a
    call: f
)y");
  harness h{def, {{"who", "ann"}}};
  h.run_all({"ok a {\"n\":4}"});
  CHECK(h.state().result() == json{{"total", 5}, {"who", "ANN"}});
}
