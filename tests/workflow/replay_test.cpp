// Replay determinism on a full run of the demo order workflow and on a run
// with remote-worker features (suspensions, a dead-letter retry): any prefix
// then the rest folds to the same state, re-deciding on a recorded prefix
// reproduces the recorded decision, and deciding twice changes nothing.
#include <catch2/catch.hpp>

#include "tests/workflow/support.hpp"

using namespace cerebelum::workflow;
using cerebelum::workflow::test::harness;

namespace ev = cerebelum::events;

namespace {

definition order() {
  auto r = load_file(std::string{CEREBELUM_EXAMPLES_DIR} + "/order.yaml");
  if (!r) FAIL(r.error().to_string());
  return std::move(*r);
}

/// Runs the order workflow through every stage and returns its harness and
/// the history length after each decision.
std::pair<harness, std::vector<std::size_t>> full_run() {
  harness h{order(), {{"order_id", "o-1"}, {"amount", 5000}, {"items", {1}}}};
  std::vector<std::size_t> boundaries;
  h.decide();
  boundaries.push_back(h.history().size());
  for (const char* line :
       {"ok validate {\"ok\":true}", "err inventory busy retryable",
        "ok fraud {\"score\":0.1}", "fire inventory", "ok inventory {}",
        "fire cool_down", "grant approve", "ok ship {\"tracking\":\"T1\"}"}) {
    h.run(line);
    boundaries.push_back(h.history().size());
  }
  return {std::move(h), boundaries};
}

std::string bytes(const std::vector<ev::Event>& events) {
  std::string out;
  for (const auto& e : events)
    out += e.SerializeAsString() + "|";
  return out;
}

} // namespace

TEST_CASE("the demo order workflow runs to completion") {
  auto [h, boundaries] = full_run();
  auto s = h.state();
  CHECK(s.status() == execution_status::completed);
  CHECK(s.result()
        == json{{"order_id", "o-1"}, {"shipment", {{"tracking", "T1"}}}});
  const auto& c = h.commands();
  CHECK(std::count_if(c.begin(), c.end(),
                      [](const std::string& x) {
                        return x.rfind("timer sleep cool_down @", 0) == 0;
                      })
        == 1);
  CHECK(std::find(c.begin(), c.end(), "finish completed") != c.end());
}

TEST_CASE("folding any prefix and then the rest equals folding the whole") {
  auto [h, boundaries] = full_run();
  const auto& hist = h.history();
  auto whole = h.state().snapshot();
  for (std::size_t k = 0; k <= hist.size(); ++k) {
    execution_state s{h.def(), "ex-1"};
    for (std::size_t i = 0; i < k; ++i)
      REQUIRE(s.apply(hist[i]).ok());
    auto copy = s; // resume from a copy, as a snapshot would
    for (std::size_t i = k; i < hist.size(); ++i)
      REQUIRE(copy.apply(hist[i]).ok());
    INFO("prefix " << k);
    CHECK(copy.snapshot() == whole);
  }
}

TEST_CASE("re-deciding on a recorded prefix reproduces the recorded decision") {
  auto [h, boundaries] = full_run();
  const auto& hist = h.history();
  for (std::size_t b = 0; b + 1 < boundaries.size(); ++b) {
    // The input event after boundary b, then the decision that followed.
    auto input_end = boundaries[b] + 1;
    std::vector<ev::Event> prefix(hist.begin(), hist.begin() + input_end);
    auto now = hist[input_end].recorded_at_ms();
    auto d = decide(h.def(), prefix, {"ex-1", now, {}});
    REQUIRE(d.ok());
    std::vector<ev::Event> recorded(hist.begin() + input_end,
                                    hist.begin() + boundaries[b + 1]);
    INFO("decision " << b);
    CHECK(bytes(d->events) == bytes(recorded));
  }
}

TEST_CASE("deciding twice on the same history gives the same output") {
  auto [h, boundaries] = full_run();
  for (auto end : boundaries) {
    std::vector<ev::Event> prefix(h.history().begin(),
                                  h.history().begin() + end - 1);
    auto a = decide(h.def(), prefix, {"ex-1", 77, {}});
    auto b = decide(h.def(), prefix, {"ex-1", 77, {}});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(bytes(a->events) == bytes(b->events));
    REQUIRE(a->commands.size() == b->commands.size());
    for (std::size_t i = 0; i < a->commands.size(); ++i)
      CHECK(test::describe(a->commands[i]) == test::describe(b->commands[i]));
  }
}

TEST_CASE("a fully decided history yields no new events") {
  auto [h, boundaries] = full_run();
  harness mid{order(), {{"order_id", "o-2"}, {"amount", 5}, {"items", {}}}};
  mid.decide();
  auto again = decide(mid.def(), mid.history(), {"ex-1", 5000, {}});
  REQUIRE(again.ok());
  CHECK(again->events.empty());
  CHECK(again->commands.empty());
}

TEST_CASE("the incremental decider gives the same output as the pure one") {
  auto [h, boundaries] = full_run();
  const auto& hist = h.history();
  execution_state s{h.def(), "ex-1"};
  std::size_t i = 0;
  for (std::size_t b = 0; b + 1 < boundaries.size(); ++b) {
    for (; i < boundaries[b] + 1; ++i)
      REQUIRE(s.apply(hist[i]).ok());
    auto d = decide(s, hist[i].recorded_at_ms());
    REQUIRE(d.ok());
    i = boundaries[b + 1];
    std::vector<ev::Event> recorded(hist.begin() + boundaries[b] + 1,
                                    hist.begin() + boundaries[b + 1]);
    CHECK(bytes(d->events) == bytes(recorded));
  }
  CHECK(s.snapshot() == h.state().snapshot());
}

TEST_CASE("resume commands re-issue what is outstanding after a restart") {
  harness h{order(), {{"order_id", "o-1"}, {"amount", 5000}, {"items", {1}}}};
  h.run_all({"ok validate {}"});
  auto cmds = resume_commands(h.state());
  REQUIRE(cmds.size() == 3); // two runs and fraud's step timeout
  const auto& inv = std::get<run_step_command>(cmds[0]);
  CHECK(inv.step == "inventory");
  CHECK(inv.target == "orders.check_inventory");
  CHECK(inv.input == json{{"order_id", "o-1"}, {"items", {1}}});
  const auto& fraud = std::get<run_step_command>(cmds[1]);
  CHECK(fraud.start_to_close_timeout_ms == 10'000);
  CHECK(std::get<start_timer_command>(cmds[2]).purpose == "step_timeout");
  h.run_all({"ok inventory {}", "ok fraud {\"score\":0.9}", "fire cool_down"});
  auto waiting = resume_commands(h.state());
  REQUIRE(waiting.size() == 2);
  CHECK(std::get<start_timer_command>(waiting[0]).purpose
        == "approval_timeout");
  CHECK(std::get<request_approval_command>(waiting[1]).data["fraud_score"]
        == 0.9);
}

TEST_CASE("a history from another definition version is refused") {
  auto [h, boundaries] = full_run();
  auto other = h.def();
  other.version_hash ^= 1;
  auto d = decide(other, h.history(), {"ex-1", 0, {}});
  REQUIRE_FALSE(d.ok());
  CHECK_THAT(d.error().message, Catch::Contains("version mismatch"));
}

TEST_CASE("unknown optional events are skipped and unknown core events "
          "refused") {
  harness h{order(), {{"order_id", "o-1"}, {"amount", 1}, {"items", {}}}};
  h.decide();
  auto hist = h.history();
  // An optional event from a newer node: field 1500 of Event, a message.
  ev::Event optional;
  std::string wire = std::string{"\xe2\x5d\x02\x08\x01", 5};
  REQUIRE(optional.ParseFromString(wire));
  hist.push_back(optional);
  auto skipped = decide(h.def(), hist, {"ex-1", 0, {}});
  REQUIRE(skipped.ok());
  CHECK(skipped->events.empty());
  // A core event this node does not know: field 900.
  ev::Event core;
  REQUIRE(core.ParseFromString(std::string{"\xa2\x38\x00", 3}));
  hist.push_back(core);
  auto refused = decide(h.def(), hist, {"ex-1", 0, {}});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("unknown core event"));
}

TEST_CASE("a history that does not begin with execution_started is refused") {
  auto def = order();
  auto empty = decide(def, {}, {"ex-1", 0, {}});
  REQUIRE_FALSE(empty.ok());
  CHECK_THAT(empty.error().message, Catch::Contains("execution_started"));
  ev::Event stray;
  stray.mutable_timer_fired()->set_timer_id("x");
  auto bad = decide(def, {stray}, {"ex-1", 0, {}});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("does not begin"));
}

TEST_CASE("attempt tokens are deterministic and differ across executions") {
  CHECK(attempt_token("ex-1", "ship", 1, 2, -1)
        == attempt_token("ex-1", "ship", 1, 2, -1));
  CHECK(attempt_token("ex-1", "ship", 1, 2, -1).rfind("ship/v1/a2/", 0) == 0);
  CHECK(attempt_token("ex-1", "ship", 1, 2, -1)
        != attempt_token("ex-2", "ship", 1, 2, -1));
  CHECK(attempt_token("ex-1", "m", 1, 1, 3).rfind("m[3]/v1/a1/", 0) == 0);
}

namespace {

const char* const remote_workers = R"y(
name: remote_workers
steps:
  - name: fetch
    task: jobs.fetch
    queue: jobs
    timeout: 1m
    retry: { max_attempts: 2, initial_interval: 1s }
  - name: fan
    parallel:
      - { name: left, task: jobs.left, queue: jobs }
      - name: right
        map: { over: "[1, 2]" }
        task: jobs.right
        queue: jobs
        input: { v: "item" }
  - name: report
    set: { left: "steps.left", right: "steps.right" }
)y";

/// A run with suspensions (sleep, approvals, in a group and a map child), a
/// dead letter and its retry, progress and a late result; returns the
/// harness and the history length after each decision.
std::pair<harness, std::vector<std::size_t>> remote_run() {
  harness h{test::must_load(remote_workers)};
  std::vector<std::size_t> boundaries;
  h.decide();
  boundaries.push_back(h.history().size());
  for (const char* line :
       {"suspend fetch cool sleep 3000", "fire fetch", "progress fetch {}",
        "suspend fetch ok approval 60000 {\"n\":1}", "grant fetch \"yes\"",
        "err fetch lease_expired retryable", "fire fetch",
        "err fetch worker_lost retryable", "resume fetch",
        "ok fetch {\"rows\":3}", "suspend left nap sleep 100",
        "suspend right[1] ask approval 0", "ok right[0] 10", "fire left",
        "late left 0", "grant right", "ok left \"L\"", "ok right[1] 11"}) {
    h.run(line);
    boundaries.push_back(h.history().size());
  }
  return {std::move(h), boundaries};
}

} // namespace

TEST_CASE("a run with suspensions and a dead-letter retry replays exactly") {
  auto [h, boundaries] = remote_run();
  const auto& hist = h.history();
  auto whole = h.state();
  REQUIRE(whole.status() == execution_status::completed);
  CHECK(whole.result()["report"] == json{{"left", "L"}, {"right", {10, 11}}});
  // Any prefix, then the rest, folds to the same state.
  for (std::size_t k = 0; k <= hist.size(); ++k) {
    execution_state s{h.def(), "ex-1"};
    for (std::size_t i = 0; i < k; ++i)
      REQUIRE(s.apply(hist[i]).ok());
    auto copy = s;
    for (std::size_t i = k; i < hist.size(); ++i)
      REQUIRE(copy.apply(hist[i]).ok());
    INFO("prefix " << k);
    CHECK(copy.snapshot() == whole.snapshot());
  }
  // Re-deciding on every recorded input prefix reproduces the decision,
  // from scratch and incrementally; the commands are the same each time.
  execution_state inc{h.def(), "ex-1"};
  std::size_t i = 0;
  for (std::size_t b = 0; b + 1 < boundaries.size(); ++b) {
    auto input_end = boundaries[b] + 1;
    std::vector<ev::Event> prefix(hist.begin(), hist.begin() + input_end);
    auto now = hist[input_end].recorded_at_ms();
    auto d = decide(h.def(), prefix, {"ex-1", now, {}});
    auto again = decide(h.def(), prefix, {"ex-1", now, {}});
    REQUIRE(d.ok());
    REQUIRE(again.ok());
    std::vector<ev::Event> recorded(hist.begin() + input_end,
                                    hist.begin() + boundaries[b + 1]);
    INFO("decision " << b);
    CHECK(bytes(d->events) == bytes(recorded));
    REQUIRE(d->commands.size() == again->commands.size());
    for (std::size_t c = 0; c < d->commands.size(); ++c)
      CHECK(test::describe(d->commands[c])
            == test::describe(again->commands[c]));
    for (; i < input_end; ++i)
      REQUIRE(inc.apply(hist[i]).ok());
    auto di = decide(inc, now);
    REQUIRE(di.ok());
    CHECK(bytes(di->events) == bytes(recorded));
    i = boundaries[b + 1];
  }
  CHECK(inc.snapshot() == whole.snapshot());
}

TEST_CASE("the remote-worker run records what it should") {
  auto [h, boundaries] = remote_run();
  auto ev = h.events();
  auto has = [&](const std::string& x) {
    return std::find(ev.begin(), ev.end(), x) != ev.end();
  };
  CHECK(has("scheduled fetch a2 resume {\"cool\":true}"));
  CHECK(has("scheduled fetch a3 resume {\"cool\":true,\"ok\":\"yes\"}"));
  // a3 failed (1st failure), a4 failed (2nd: budget of 2 spent), resumed: a5.
  CHECK(has("diverge fetch retry +1000ms"));
  CHECK(has("execution failed worker_lost"));
  CHECK(has("execution resumed fetch"));
  CHECK(has("scheduled fetch a5 resume {\"cool\":true,\"ok\":\"yes\"}"));
  CHECK(has("scheduled left a2 resume {\"nap\":true}"));
  CHECK(has("scheduled right[1] a2 resume {\"ask\":true}"));
  // After a restart mid-way (fetch waiting for its approval), the waits
  // are re-issued from the folded history alone.
  execution_state mid{h.def(), "ex-1"};
  for (std::size_t i = 0; i < boundaries[4]; ++i)
    REQUIRE(mid.apply(h.history()[i]).ok());
  CHECK(mid.status() == execution_status::awaiting_approval);
  auto cmds = resume_commands(mid);
  REQUIRE(cmds.size() == 2);
  CHECK(std::get<start_timer_command>(cmds[0]).purpose == "approval_timeout");
  CHECK(std::get<request_approval_command>(cmds[1]).data == json{{"n", 1}});
}
