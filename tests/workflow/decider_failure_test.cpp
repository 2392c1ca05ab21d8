// Table-driven decider tests of failures and waiting: diverge (retry with
// exact backoff, goto, continue, fail), parallel join with a failed member,
// approvals, step timeouts, late results, and map steps.
#include <catch2/catch.hpp>

#include "tests/workflow/support.hpp"

using namespace cerebelum::workflow;
using cerebelum::workflow::test::harness;
using cerebelum::workflow::test::must_load;

namespace {

const char* const retrying = R"y(
name: retrying
steps:
  - name: charge
    call: pay.charge
    retry:
      max_attempts: 4
      initial_interval: 1s
      backoff_coefficient: 3
      max_interval: 5s
    diverge:
      - kind: card_declined
        goto: declined
      - kind: soft
        action: continue
  - name: receipt
    log: "charged"
    branch:
      - goto: end
  - name: declined
    log: "declined"
)y";

/// Fire-at times of every retry_backoff timer in the history.
std::vector<std::string> retry_timers(const harness& h) {
  std::vector<std::string> out;
  for (const auto& e : h.events())
    if (e.rfind("timer retry_backoff", 0) == 0) out.push_back(e);
  return out;
}

} // namespace

TEST_CASE("retryable failures are retried with exact exponential backoff "
          "capped at max_interval") {
  harness h{must_load(retrying)};
  h.run_all({"err charge timeout retryable", "fire charge",
             "err charge timeout retryable", "fire charge",
             "err charge timeout retryable", "fire charge",
             "err charge timeout retryable"});
  // Delays 1s, 3s, then 9s capped at 5s; the 4th failure exhausts 4 attempts.
  CHECK(retry_timers(h)
        == std::vector<std::string>{"timer retry_backoff charge @2000",
                                    "timer retry_backoff charge @5000",
                                    "timer retry_backoff charge @10000"});
  auto ev = h.events();
  CHECK(std::count(ev.begin(), ev.end(), "diverge charge retry +1000ms") == 1);
  CHECK(std::count(ev.begin(), ev.end(), "diverge charge retry +3000ms") == 1);
  CHECK(std::count(ev.begin(), ev.end(), "diverge charge retry +5000ms") == 1);
  CHECK(std::count(ev.begin(), ev.end(), "scheduled charge a4") == 1);
  CHECK(ev[ev.size() - 2] == "diverge charge fail");
  CHECK(ev.back() == "execution failed timeout");
  CHECK(h.state().error()->message.rfind("step 'charge' failed after 4", 0)
        == 0);
}

TEST_CASE("a retry is not scheduled before its backoff timer fires") {
  harness h{must_load(retrying)};
  h.run_all({"err charge timeout retryable", "wait 999"});
  CHECK(h.state().outstanding().empty());
  CHECK(h.state().status() == execution_status::sleeping);
  CHECK(h.state().next_wake_ms() == 2000);
  h.run("fire charge");
  CHECK(h.outstanding("charge").attempt == 2);
  CHECK(h.commands().back().rfind("run call pay.charge charge a2", 0) == 0);
}

TEST_CASE("a non-retryable failure that matches no rule fails the execution") {
  harness h{must_load(retrying)};
  h.run_all({"err charge fatal"});
  CHECK(h.events()
        == std::vector<std::string>{
          "scheduled charge a1", "failed charge fatal", "diverge charge fail",
          "execution failed fatal"});
  CHECK(h.commands().back() == "finish failed");
}

TEST_CASE("a diverge goto jumps to its target") {
  harness h{must_load(retrying)};
  h.run_all({"err charge card_declined"});
  CHECK(h.events()
        == std::vector<std::string>{
          "scheduled charge a1", "failed charge card_declined",
          "diverge charge goto declined", "scheduled declined a1",
          "log info declined", "completed declined null",
          "execution completed {\"declined\":null}"});
}

TEST_CASE("a diverge continue moves on with a null result") {
  harness h{must_load(retrying)};
  h.run_all({"err charge soft"});
  CHECK(h.events()
        == std::vector<std::string>{
          "scheduled charge a1", "failed charge soft",
          "diverge charge continue", "scheduled receipt a1", "log info charged",
          "completed receipt null", "branch receipt -> end",
          "execution completed {\"charge\":null,\"receipt\":null}"});
}

TEST_CASE("a late result of a retried attempt is rejected") {
  harness h{must_load(retrying)};
  h.run_all({"err charge timeout retryable", "fire charge", "late charge 99"});
  auto s = h.state();
  CHECK(s.outstanding().size() == 1);
  CHECK(s.outstanding()[0].attempt == 2);
  CHECK_FALSE(s.results().contains("charge"));
  CHECK_FALSE(
    s.accepts_result(h.history()[1].step_scheduled().attempt_token()));
}

TEST_CASE("a diverge rule can match on message and on a condition over error") {
  auto def = must_load(R"y(
name: t
steps:
  - name: a
    call: f
    diverge:
      - message: "quota"
        if: "error.retryable"
        retry: { max_attempts: 2, initial_interval: 250ms }
      - action: continue
)y");
  harness h{def};
  h.run_all({"err a quota retryable"});
  CHECK(h.events()[2] == "diverge a retry +250ms");
  h.run("fire a");
  h.run("err a other");
  CHECK(h.events().back() == "execution completed {\"a\":null}");
}

TEST_CASE("a failed parallel member fails the join and abandons its siblings") {
  auto def = must_load(R"y(
name: t
steps:
  - name: g
    parallel:
      - name: a
        call: f.a
      - name: b
        call: f.b
  - name: after
    log: after
)y");
  harness h{def};
  auto d = h.run_all({"err a broken"});
  CHECK(h.events().back() == "execution failed broken");
  auto fin = h.commands().back();
  CHECK(fin == "finish failed");
  harness again{def};
  again.decide();
  again.append([&] {
    cerebelum::events::Event e;
    auto a = again.outstanding("a");
    auto* f = e.mutable_step_failed();
    f->set_step("a");
    f->set_attempt(1);
    f->set_attempt_token(a.token);
    f->set_map_index(-1);
    f->mutable_error()->set_kind("broken");
    return e;
  }());
  auto last = again.decide();
  const auto& finish = std::get<finish_command>(last.commands.back());
  REQUIRE(finish.abandoned.size() == 1);
  CHECK(finish.abandoned[0].step == "b");
}

TEST_CASE("a parallel member that fails with continue still joins") {
  auto def = must_load(R"y(
name: t
steps:
  - name: g
    parallel:
      - name: a
        call: f.a
        diverge: [ { action: continue } ]
      - name: b
        call: f.b
)y");
  harness h{def};
  h.run_all({"err a broken", "ok b 2"});
  CHECK(h.events().back() == "execution completed {\"a\":null,\"b\":2}");
}

namespace {

const char* const approving = R"y(
name: approving
steps:
  - name: ask
    approval:
      data: { amount: "input.amount" }
      timeout: 1h
    diverge:
      - kind: approval_timeout
        goto: escalate
  - name: ship
    log: "approved by ${steps.ask.by}"
    branch: [ { goto: end } ]
  - name: escalate
    log: escalated
)y";

} // namespace

TEST_CASE("an approval waits for an operator and completes when granted") {
  harness h{must_load(approving), {{"amount", 10}}};
  h.run_all({});
  auto s = h.state();
  CHECK(s.status() == execution_status::awaiting_approval);
  REQUIRE(s.approval().has_value());
  CHECK(s.approval()->data == json{{"amount", 10}});
  CHECK(s.next_wake_ms() == 1000 + 3'600'000);
  CHECK(h.commands()
        == std::vector<std::string>{"approval ask {\"amount\":10}",
                                    "timer approval_timeout ask @3601000"});
  h.run("grant ask {\"note\":\"fine\"}");
  CHECK(h.events()[4]
        == "completed ask {\"approved\":true,\"by\":\"ops\","
           "\"data\":{\"note\":\"fine\"}}");
  CHECK(h.events()[6] == "log info approved by ops");
  CHECK(h.state().status() == execution_status::completed);
  CHECK(h.state().timers().empty());
}

TEST_CASE("a rejected approval fails the step with approval_rejected") {
  harness h{must_load(approving), {{"amount", 10}}};
  h.run_all({"reject ask"});
  auto ev = h.events();
  CHECK(ev[4] == "failed ask approval_rejected");
  CHECK(ev.back() == "execution failed approval_rejected");
}

TEST_CASE("an approval that times out goes through diverge") {
  harness h{must_load(approving), {{"amount", 10}}};
  h.run_all({"fire ask"});
  auto ev = h.events();
  CHECK(ev[4] == "approval timed out ask");
  CHECK(ev[5] == "failed ask approval_timeout");
  CHECK(ev[6] == "diverge ask goto escalate");
  CHECK(ev.back() == "execution completed {\"escalate\":null}");
}

TEST_CASE("an approval decision for a step not awaiting one is ignored") {
  harness h{must_load(approving), {{"amount", 10}}};
  h.run_all({"grant ship"});
  CHECK(h.state().status() == execution_status::awaiting_approval);
}

TEST_CASE("a step that outlives its timeout fails with kind timeout") {
  auto def = must_load(R"y(
name: t
steps:
  - name: slow
    task: slow.job
    queue: jobs
    timeout: 30s
    retry: { max_attempts: 2, initial_interval: 1s }
)y");
  harness h{def};
  h.run_all({"fire slow"});
  auto ev = h.events();
  CHECK(ev[0] == "scheduled slow a1");
  CHECK(ev[1] == "timer step_timeout slow @31000");
  CHECK(ev[3] == "failed slow timeout");
  CHECK(ev[4] == "diverge slow retry +1000ms");
  CHECK(h.commands()[0].rfind("run task slow.job slow a1", 0) == 0);
  h.run("late slow 1");
  CHECK_FALSE(h.state().results().contains("slow"));
}

namespace {

const char* const mapping = R"y(
name: mapping
steps:
  - name: each
    map: { over: "input.items", concurrency: 2 }
    call: f.item
    input: { value: "item", position: "index" }
    diverge:
      - kind: skip
        action: continue
      - kind: flaky
        retry: { max_attempts: 3, initial_interval: 100ms }
)y";

/// Map children currently outstanding.
std::size_t running_children(const harness& h) {
  return h.state().outstanding().size();
}

} // namespace

TEST_CASE("a map step never runs more children than its concurrency limit") {
  harness h{must_load(mapping), {{"items", {10, 20, 30, 40, 50}}}};
  h.run_all({});
  CHECK(running_children(h) == 2);
  CHECK(h.commands()
        == std::vector<std::string>{
          "run call f.item each[0] a1 {\"position\":0,\"value\":10}",
          "run call f.item each[1] a1 {\"position\":1,\"value\":20}"});
  h.run("ok each[1] 2");
  CHECK(running_children(h) == 2);
  CHECK(h.outstanding("each", 2).attempt == 1);
  h.run_all({"ok each[0] 1", "err each[2] skip", "ok each[3] 4"});
  CHECK(running_children(h) == 1);
  h.run("ok each[4] 5");
  CHECK(h.events().back() == "execution completed {\"each\":[1,2,null,4,5]}");
}

TEST_CASE("a map child is retried on its own") {
  harness h{must_load(mapping), {{"items", {1, 2}}}};
  h.run_all({"err each[0] flaky", "ok each[1] 20"});
  CHECK(running_children(h) == 0);
  h.run("fire each");
  CHECK(h.outstanding("each", 0).attempt == 2);
  h.run("ok each[0] 10");
  CHECK(h.state().result() == json{{"each", {10, 20}}});
}

TEST_CASE("a map over an empty list completes with an empty list") {
  harness h{must_load(mapping), {{"items", json::array()}}};
  h.run_all({});
  CHECK(h.events()
        == std::vector<std::string>{"scheduled each a1", "completed each []",
                                    "execution completed {\"each\":[]}"});
}

TEST_CASE("a map over something that is not a list fails with "
          "expression_error") {
  harness h{must_load(mapping), {{"items", 3}}};
  h.run_all({});
  CHECK(h.events()[1] == "failed each expression_error");
  CHECK(h.state().status() == execution_status::failed);
}

TEST_CASE("a diverge goto backwards counts as a back-jump") {
  auto def = must_load(R"y(
name: t
max_iterations: 1
steps:
  - name: prepare
    log: prepare
  - name: work
    call: f
    diverge:
      - kind: stale
        goto: prepare
)y");
  harness h{def};
  h.run_all({"err work stale"});
  auto ev = h.events();
  CHECK(ev[5] == "diverge work goto prepare");
  CHECK(ev[6] == "jumped work -> prepare #1");
  CHECK(ev[7] == "scheduled prepare a1");
  h.run("err work stale");
  CHECK(h.events().back() == "execution failed max_iterations_exceeded");
}

TEST_CASE("a branch on a parallel group is evaluated after the join") {
  auto def = must_load(R"y(
name: t
steps:
  - name: g
    parallel:
      - { name: a, call: f }
      - { name: b, call: f }
    branch:
      - if: "steps.a + steps.b > 2"
        goto: big
  - name: small
    log: small
    branch: [ { goto: end } ]
  - name: big
    log: big
)y");
  harness h{def};
  h.run_all({"ok a 1", "ok b 2"});
  auto ev = h.events();
  CHECK(ev[4] == "branch g -> big");
  CHECK(ev.back() == "execution completed {\"a\":1,\"b\":2,\"big\":null}");
}

TEST_CASE("an approval_timed_out appended by the actor is not recorded twice") {
  harness h{must_load(approving), {{"amount", 10}}};
  h.run_all({"timeout ask"});
  auto ev = h.events();
  CHECK(std::count(ev.begin(), ev.end(), "approval timed out ask") == 1);
  CHECK(ev[4] == "failed ask approval_timeout");
  CHECK(ev.back() == "execution completed {\"escalate\":null}");
}
