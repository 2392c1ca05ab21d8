// The upgrade check (workflow/upgrade_check.hpp): a history recorded on one
// definition, replayed decision for decision against another. Rules:
// docs/upgrades.md.
#include <catch2/catch.hpp>

#include "tests/workflow/support.hpp"
#include "workflow/upgrade_check.hpp"

using namespace cerebelum::workflow;
using cerebelum::workflow::test::harness;
using cerebelum::workflow::test::must_load;

namespace {

/// The order of the demo, shortened: a call, a sleep, a call.
const char* const nap = R"y(
name: nap
steps:
  - name: prepare
    call: f.prepare
    retry: { max_attempts: 3, initial_interval: 1s }
  - name: rest
    sleep: 10s
  - name: finish
    call: f.finish
)y";

/// Runs `script` on `old_yaml`, then checks the history against `new_yaml`.
std::optional<upgrade_divergence> check(const char* old_yaml,
                                        const std::vector<std::string>& script,
                                        const std::string& new_yaml) {
  harness h{must_load(old_yaml)};
  h.run_all(script);
  auto d = check_upgrade(must_load(new_yaml), "ex-1", h.history());
  if (d)
    UNSCOPED_INFO("diverges at " << d->seq << " " << d->event_type << " "
                                 << d->step << ": " << d->reason);
  return d;
}

/// `nap` with `from` replaced by `to` (once; the text must be there).
std::string edit(const char* yaml, const std::string& from,
                 const std::string& to) {
  std::string out = yaml;
  auto at = out.find(from);
  REQUIRE(at != std::string::npos);
  return out.replace(at, from.size(), to);
}

/// The sleeping `nap` execution: prepare done, rest sleeping.
const std::vector<std::string> sleeping = {"ok prepare {}"};

} // namespace

// -- every history is compatible with its own definition -------------------

TEST_CASE("a history is compatible with the definition that recorded it") {
  struct run {
    const char* yaml;
    std::vector<std::string> script;
  };
  const std::vector<run> runs = {
    {nap, {}},
    {nap, {"ok prepare {}"}},
    {nap,
     {"err prepare boom retryable", "fire prepare", "ok prepare {}",
      "fire rest", "ok finish {}"}},
    {nap, {"ok prepare {}", "cancel"}},
    {R"y(
name: par
steps:
  - name: checks
    parallel:
      - { name: inv, call: f.inv }
      - { name: fraud, call: f.fraud, timeout: 5s }
  - name: after
    set: { both: "[steps.inv, steps.fraud]" }
  - name: note
    log: "done ${steps.after.both}"
  - name: ask
    approval: { data: { x: "1" }, timeout: 1h }
)y",
     {"ok fraud {}", "ok inv {}"}},
    {R"y(
name: loop
max_iterations: 3
steps:
  - name: poll
    call: f.poll
    branch:
      - if: "steps.poll.done"
        goto: end
  - name: wait
    sleep: 1s
    branch:
      - goto: poll
)y",
     {"ok poll {\"done\": false}", "fire wait", "ok poll {\"done\": false}",
      "fire wait"}},
    {R"y(
name: fan
steps:
  - name: each
    map: { over: "[1, 2, 3]", concurrency: 2 }
    call: f.one
  - name: ask
    approval: { data: {} }
)y",
     {"ok each[0] 1", "ok each[1] 2", "ok each[2] 3"}},
  };
  for (const auto& r : runs) {
    harness h{must_load(r.yaml)};
    h.run_all(r.script);
    INFO(r.yaml);
    auto d = check_upgrade(h.def(), "ex-1", h.history());
    if (d)
      UNSCOPED_INFO("diverges at " << d->seq << " " << d->event_type << " "
                                   << d->step << ": " << d->reason);
    CHECK_FALSE(d.has_value());
  }
}

// -- compatible edits ------------------------------------------------------

TEST_CASE("adding a step after the current position is compatible") {
  auto d = check(nap, sleeping,
                 std::string{nap} + "  - name: extra\n    call: f.extra\n");
  CHECK_FALSE(d.has_value());
}

TEST_CASE("changing a step the execution has not reached is compatible") {
  // finish: a call becomes a task with another target.
  auto d = check(nap, sleeping,
                 edit(nap, "call: f.finish", "task: t.finish\n    queue: q"));
  CHECK_FALSE(d.has_value());
}

TEST_CASE("removing a step the execution has not reached is compatible") {
  auto d = check(nap, sleeping,
                 edit(nap, R"(  - name: finish
    call: f.finish
)",
                      ""));
  CHECK_FALSE(d.has_value());
}

TEST_CASE("changing the retry options, input and target of a step already "
          "run is compatible when it decides the same") {
  auto d = check(
    nap, {"err prepare boom retryable", "fire prepare", "ok prepare {}"},
    edit(nap,
         "    call: f.prepare\n    retry: { max_attempts: 3, "
         "initial_interval: 1s }",
         "    call: f.prepare2\n    input: { a: \"1\" }\n    "
         "retry: { max_attempts: 5, initial_interval: 3s }\n    "
         "timeout: 30s"));
  CHECK_FALSE(d.has_value());
}

TEST_CASE("changing the duration of the sleep under way is compatible") {
  CHECK_FALSE(check(nap, sleeping, edit(nap, "sleep: 10s", "sleep: 1h")));
}

// -- incompatible edits ----------------------------------------------------

TEST_CASE("renaming a step the execution went through is incompatible and "
          "names its first event") {
  auto d = check(nap, sleeping, edit(nap, "name: prepare", "name: prep"));
  REQUIRE(d.has_value());
  CHECK(d->seq == 1);
  CHECK(d->event_type == "step_scheduled");
  CHECK(d->step == "prepare");
  CHECK(d->reason
        == "step 'prepare' is not in the new definition (renamed or "
           "removed)");
}

TEST_CASE("renaming the step under way is incompatible") {
  auto d = check(nap, sleeping, edit(nap, "name: rest", "name: nap"));
  REQUIRE(d.has_value());
  CHECK(d->event_type == "step_scheduled");
  CHECK(d->step == "rest");
}

TEST_CASE("reordering steps the execution went through is incompatible") {
  const char* two = R"y(
name: nap
steps:
  - { name: a, call: f.a }
  - { name: b, call: f.b }
  - { name: c, sleep: 1h }
)y";
  auto d = check(two, {"ok a {}", "ok b {}"}, R"y(
name: nap
steps:
  - { name: b, call: f.b }
  - { name: a, call: f.a }
  - { name: c, sleep: 1h }
)y");
  REQUIRE(d.has_value());
  CHECK(d->seq == 1);
  CHECK(d->step == "a");
  CHECK(d->reason.find("records step_scheduled of 'b'") != std::string::npos);
}

TEST_CASE("inserting a step before the current position is incompatible") {
  auto d = check(nap, sleeping,
                 edit(nap, "  - name: rest",
                      "  - name: check\n    call: f.check\n  - name: rest"));
  REQUIRE(d.has_value());
  CHECK(d->event_type == "step_scheduled");
  CHECK(d->step == "rest");
  CHECK(d->reason.find("step_scheduled of 'check'") != std::string::npos);
}

TEST_CASE("changing the kind of a step already run is incompatible") {
  auto d = check(nap, sleeping,
                 edit(nap, "call: f.prepare", "task: t.prepare\n    queue: q"));
  REQUIRE(d.has_value());
  CHECK(d->seq == 1);
  CHECK(d->step == "prepare");
  CHECK(d->reason.find("kind task") != std::string::npos);
}

TEST_CASE("a retry policy that would have failed an attempt already retried "
          "is incompatible") {
  auto d = check(nap, {"err prepare boom retryable", "fire prepare"},
                 edit(nap, "max_attempts: 3", "max_attempts: 1"));
  REQUIRE(d.has_value());
  CHECK(d->event_type == "diverge_taken");
  CHECK(d->reason.find("(fail)") != std::string::npos);
}

TEST_CASE("a branch that would go elsewhere is incompatible") {
  const char* br = R"y(
name: br
steps:
  - name: decide
    set: { seen: "input.amount" }
    branch:
      - if: "input.amount > 100"
        goto: review
      - goto: small
  - name: review
    sleep: 1h
  - name: small
    sleep: 1h
)y";
  harness h{must_load(br), json{{"amount", 500}}};
  h.run_all({});
  auto d = check_upgrade(must_load(edit(br, "> 100", "> 1000")), "ex-1",
                         h.history());
  REQUIRE(d.has_value());
  CHECK(d->event_type == "branch_taken");
  CHECK(d->reason.find("to 'small'") != std::string::npos);
}

TEST_CASE("a parallel member added to a stage under way is incompatible") {
  auto d = check(nap, sleeping,
                 edit(nap, R"(  - name: rest
    sleep: 10s)",
                      R"(  - name: group
    parallel:
      - { name: rest, sleep: 10s }
      - { name: more, call: f.more })"));
  REQUIRE(d.has_value());
  CHECK(d->reason.find("'more'") != std::string::npos);
}

TEST_CASE("another workflow's definition is incompatible") {
  auto d = check(nap, sleeping, edit(nap, "name: nap", "name: other"));
  REQUIRE(d.has_value());
  CHECK(d->seq == 0);
  CHECK(d->event_type == "execution_started");
}

TEST_CASE("changing the kind of a map's children already scheduled is "
          "incompatible") {
  const char* fan = R"y(
name: fan
steps:
  - name: each
    map: { over: "[1, 2]" }
    call: f.one
)y";
  auto d = check(fan, {"ok each[1] 2"},
                 edit(fan, "call: f.one", "task: t.one\n    queue: q"));
  REQUIRE(d.has_value());
  CHECK(d->event_type == "step_scheduled");
  CHECK(d->step == "each");
  CHECK(d->reason.find("kind task") != std::string::npos);
}

TEST_CASE("lost attempts offered again are the node's choice, not the "
          "definition's") {
  const char* remote = R"y(
name: r
steps:
  - name: work
    task: jobs.work
    queue: jobs
  - name: done
    log: "done"
)y";
  SECTION("re-offers under the default bound") {
    harness h{must_load(remote)};
    h.run_all(
      {"lost work worker_lost", "lost work lease_expired", "fire work"});
    CHECK_FALSE(check_upgrade(must_load(remote), "ex-1", h.history()));
  }
  SECTION("a node whose bound was smaller recorded an ordinary failure") {
    auto retrying = R"y(
name: r
steps:
  - name: work
    task: jobs.work
    queue: jobs
    retry: { max_attempts: 3, initial_interval: 1s }
  - name: done
    log: "done"
)y";
    harness h{must_load(retrying)};
    h.reoffers.max_reoffers = 1;
    h.run_all({"lost work worker_lost", "lost work worker_lost", "fire work"});
    auto ev = h.events();
    REQUIRE(std::find(ev.begin(), ev.end(), "diverge work retry +1000ms")
            != ev.end());
    CHECK_FALSE(check_upgrade(must_load(retrying), "ex-1", h.history()));
  }
}

// -- migrated histories ----------------------------------------------------

TEST_CASE("a migrated history folds on the version it moved to, and only "
          "there, and the check holds it to a newer one as a whole") {
  harness h{must_load(nap)};
  h.run_all(sleeping);
  auto v2
    = must_load(std::string{nap} + "  - name: extra\n    call: f.extra\n");
  auto history = h.history();
  cerebelum::events::Event moved;
  moved.set_seq(static_cast<std::int64_t>(history.size()));
  moved.set_recorded_at_ms(h.now);
  auto* m = moved.mutable_execution_migrated();
  m->set_from_version(h.def().version_hash);
  m->set_to_version(v2.version_hash);
  m->set_by("ops");
  history.push_back(moved);
  auto fold = [&](const definition& def,
                  std::vector<std::uint64_t> chain) -> std::string {
    execution_state s{def, "ex-1"};
    if (!chain.empty()) s.expect_versions(std::move(chain));
    for (const auto& e : history)
      if (auto ok = s.apply(e); !ok) return ok.error().message;
    return "";
  };
  CHECK(fold(v2, {h.def().version_hash, v2.version_hash}).empty());
  CHECK_THAT(fold(v2, {}), Catch::Contains("version mismatch"));
  CHECK_THAT(fold(h.def(), {}), Catch::Contains("does not lead"));
  CHECK_THAT(fold(v2, {h.def().version_hash, v2.version_hash ^ 1}),
             Catch::Contains("does not lead"));
  execution_state s{v2, "ex-1"};
  s.expect_versions({h.def().version_hash, v2.version_hash});
  for (const auto& e : history)
    REQUIRE(s.apply(e));
  CHECK(s.versions()
        == std::vector<std::uint64_t>{h.def().version_hash, v2.version_hash});
  CHECK(s.status() == execution_status::sleeping);
  // A third version: the migration event decides nothing, the rest is held
  // to it as before.
  auto v3 = must_load(std::string{nap} + "  - name: extra\n    call: f.extra\n"
                      + "  - name: more\n    call: f.more\n");
  CHECK_FALSE(check_upgrade(v3, "ex-1", history).has_value());
  auto renamed = check_upgrade(
    must_load(edit(nap, "name: rest", "name: pause")), "ex-1", history);
  REQUIRE(renamed);
  CHECK(renamed->step == "rest");
}
