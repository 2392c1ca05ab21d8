// Seeded, reproducible property test: random workflows driven by random
// interleavings of inputs (results, failures, timers, approvals, cancels,
// late and duplicate deliveries, task suspensions, step progress, and
// dead-letter retries of failed executions). After every decision it checks
// that deciding twice agrees, that every command is backed by an event of the
// same decision, and that no step ever has two outstanding attempts; at the
// end, that re-deciding on every recorded prefix reproduces the history.
#include <map>
#include <random>
#include <set>

#include <catch2/catch.hpp>

#include "tests/support/rng.hpp"
#include "tests/workflow/support.hpp"
#include "workflow/builder.hpp"
#include "workflow/upgrade_check.hpp"

using namespace cerebelum::workflow;
namespace ev = cerebelum::events;

namespace {

using cerebelum::test::rng;

const char* const kinds[] = {"timeout", "fatal", "soft", "jump"};

step_builder random_step(rng& r, const std::string& name, bool in_group,
                         const std::vector<std::string>& stages) {
  step_builder s = step_builder::call(name, "f." + name);
  switch (r.below(in_group ? 3 : 7)) {
    case 0: s = step_builder::call(name, "f." + name); break;
    case 1: s = step_builder::task(name, "t." + name, "q"); break;
    case 2: s = step_builder::set(name).value("flag", "now() % 2 == 0"); break;
    case 3: s = step_builder::sleep(name, "5s"); break;
    case 4: s = step_builder::approval(name).approval_timeout("1m"); break;
    case 5:
      s = (r.chance(50) ? step_builder::call(name, "f." + name)
                        : step_builder::task(name, "t." + name, "q"))
            .map_over("[1, 2, 3, 4]", static_cast<std::uint32_t>(r.below(3)));
      break;
    default: s = step_builder::log(name, "at ${now()}"); break;
  }
  if (r.chance(50))
    s.retry({.max_attempts = static_cast<std::uint32_t>(1 + r.below(3)),
             .initial_interval_ms = 1000});
  if (r.chance(40)) s.continue_on({.kind = "soft"});
  if (!in_group && r.chance(30) && !stages.empty())
    s.goto_on({.kind = "jump"}, stages[r.below(stages.size())]);
  if (r.chance(20)) s.timeout("30s");
  return s;
}

/// A random definition; may be invalid (the caller skips those).
result<definition> random_workflow(rng& r) {
  workflow_builder b{"random"};
  b.max_iterations(static_cast<std::uint32_t>(1 + r.below(4)));
  auto n = 3 + r.below(5);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i)
    names.push_back("s" + std::to_string(i));
  for (std::size_t i = 0; i < n; ++i) {
    if (r.chance(25)) {
      b.parallel(names[i], {random_step(r, names[i] + "a", true, names),
                            random_step(r, names[i] + "b", true, names)});
    } else {
      b.then(random_step(r, names[i], false, names));
    }
    if (r.chance(35)) b.branch("now() % 3 == 0", names[r.below(n)]);
  }
  return b.build();
}

std::string key(const std::string& step, std::int32_t index) {
  return step + "#" + std::to_string(index);
}

/// Checks a decision: commands backed by its events.
void check_backed(const decision& d) {
  std::set<std::string> scheduled, timers;
  bool approval = false, finished = false;
  for (const auto& e : d.events) {
    if (e.has_step_scheduled())
      scheduled.insert(e.step_scheduled().attempt_token());
    if (e.has_timer_started()) timers.insert(e.timer_started().timer_id());
    if (e.has_approval_requested()) approval = true;
    if (e.has_execution_completed() || e.has_execution_failed()
        || e.has_execution_cancelled())
      finished = true;
  }
  for (const auto& c : d.commands) {
    if (auto* run = std::get_if<run_step_command>(&c))
      CHECK(scheduled.count(run->token) == 1);
    else if (auto* t = std::get_if<start_timer_command>(&c))
      CHECK(timers.count(t->timer_id) == 1);
    else if (std::holds_alternative<request_approval_command>(c))
      CHECK(approval);
    else
      CHECK(finished);
  }
}

/// Independent of the fold: tracks open attempts from the raw history and
/// fails if a step is scheduled while an attempt of it is still open.
void check_single_attempt(const std::vector<ev::Event>& history) {
  std::map<std::string, std::string> open; // key -> token
  for (const auto& e : history) {
    if (e.has_step_scheduled()) {
      const auto& s = e.step_scheduled();
      auto k = key(s.step(), s.map_index());
      auto it = open.find(k);
      INFO("second attempt of " << k << " while "
                                << (it == open.end() ? "" : it->second)
                                << " is open");
      CHECK(it == open.end());
      open[k] = s.attempt_token();
    } else if (e.has_step_suspended()) {
      // A suspension ends the attempt; the resumed one is a new attempt.
      const auto& s = e.step_suspended();
      auto it = open.find(key(s.step(), s.map_index()));
      if (it != open.end() && it->second == s.attempt_token()) open.erase(it);
    } else if (e.has_step_completed() || e.has_step_failed()) {
      const auto& step = e.has_step_completed() ? e.step_completed().step()
                                                : e.step_failed().step();
      auto idx = e.has_step_completed() ? e.step_completed().map_index()
                                        : e.step_failed().map_index();
      const auto& token = e.has_step_completed()
                            ? e.step_completed().attempt_token()
                            : e.step_failed().attempt_token();
      auto it = open.find(key(step, idx));
      if (it != open.end() && it->second == token) open.erase(it);
    } else if ((e.has_diverge_taken() && e.diverge_taken().action() == "goto")
               || e.has_execution_completed() || e.has_execution_failed()
               || e.has_execution_cancelled()) {
      open.clear(); // leaving a stage abandons what is still open in it
    }
  }
}

ev::Event pick_input(rng& r, const execution_state& s, std::int64_t& now,
                     const std::vector<ev::Event>& history) {
  ev::Event e;
  auto out = s.outstanding();
  std::vector<attempt_ref> runs;
  for (const auto& a : out)
    if (a.kind == step_kind::call || a.kind == step_kind::task)
      runs.push_back(a);
  auto timers = s.timers();
  auto choice = r.below(100);
  std::vector<const ev::Event*> results;
  if (choice < 6)
    for (const auto& h : history)
      if (h.has_step_completed() || h.has_step_failed() || h.has_timer_fired()
          || h.has_approval_granted())
        results.push_back(&h);
  if (choice < 1) {
    e.mutable_cancel_requested()->set_by("prop");
  } else if (!results.empty()) {
    // A duplicate or late delivery of some earlier input.
    e = *results[r.below(results.size())];
  } else if (!runs.empty() && (timers.empty() || r.chance(70))) {
    const auto& a = runs[r.below(runs.size())];
    if (a.kind == step_kind::task && r.chance(25)) {
      // The worker suspends the attempt: a durable sleep or an approval,
      // under one of a few keys (a key used twice is an invalid suspension).
      auto* su = e.mutable_step_suspended();
      su->set_step(a.step);
      su->set_map_index(a.map_index);
      su->set_attempt(a.attempt);
      su->set_attempt_token(a.token);
      su->set_wait_key("k" + std::to_string(r.below(3)));
      su->set_suspended_at_ms(now);
      su->set_worker_id("w");
      if (r.chance(50)) {
        su->set_sleep_ms(static_cast<std::int64_t>(1 + r.below(5000)));
      } else {
        su->set_approval(true);
        su->set_approval_data_json("{\"a\":1}");
        if (r.chance(50)) su->set_approval_timeout_ms(60'000);
      }
    } else if (r.chance(5)) {
      auto* p = e.mutable_step_progress();
      p->set_step(a.step);
      p->set_attempt_token(a.token);
      p->set_details_json("{}");
    } else if (r.chance(80)) {
      auto* c = e.mutable_step_completed();
      c->set_step(a.step);
      c->set_map_index(a.map_index);
      c->set_attempt(a.attempt);
      c->set_attempt_token(a.token);
      c->set_result_json(r.chance(50) ? "{\"flag\":true}" : "{\"flag\":false}");
    } else {
      auto* f = e.mutable_step_failed();
      f->set_step(a.step);
      f->set_map_index(a.map_index);
      f->set_attempt(a.attempt);
      f->set_attempt_token(a.token);
      f->mutable_error()->set_kind(kinds[r.below(4)]);
      f->mutable_error()->set_retryable(r.chance(60));
    }
  } else if (s.approval() && r.chance(60)) {
    if (r.chance(70))
      e.mutable_approval_granted()->set_step(s.approval()->step);
    else
      e.mutable_approval_rejected()->set_step(s.approval()->step);
  } else if (!timers.empty()) {
    const auto& t = timers[r.below(timers.size())];
    now = std::max(now, t.fire_at_ms);
    e.mutable_timer_fired()->set_timer_id(t.id);
  } else {
    e.mutable_cancel_requested()->set_by("prop");
  }
  now += static_cast<std::int64_t>(r.below(700));
  return e;
}

/// How the random executions ended, by status name.
std::map<std::string, std::size_t> endings;
/// Dead letters retried (execution_resumed) over all runs.
std::size_t resumes = 0;
/// step_suspended inputs and attempts scheduled with a resume_json.
std::size_t suspensions = 0;
std::size_t resumed_attempts = 0;

/// Histories checked against their own definition (upgrade check).
std::size_t upgrade_checks = 0;

/// Whether the execution's actor would record the input `e` on `s`: it
/// drops results, suspensions and timer firings that no attempt or timer
/// awaits, and approvals and cancels that do not apply
/// (actors/execution_append.cpp, actors/operator_commands.cpp).
bool actor_records(const execution_state& s, const ev::Event& e) {
  if (e.has_execution_resumed()) return true;
  if (s.terminal()) return false;
  if (e.has_step_completed())
    return s.accepts_result(e.step_completed().attempt_token());
  if (e.has_step_failed())
    return s.accepts_result(e.step_failed().attempt_token());
  if (e.has_step_suspended())
    return s.accepts_result(e.step_suspended().attempt_token());
  if (e.has_timer_fired()) {
    for (const auto& t : s.timers())
      if (t.id == e.timer_fired().timer_id()) return true;
    return false;
  }
  if (e.has_approval_granted() || e.has_approval_rejected())
    return s.approval().has_value() && !s.cancel_pending();
  if (e.has_cancel_requested()) return !s.cancel_pending();
  return true;
}

/// The history as the execution's actor would have recorded it: inputs it
/// drops left out (they fold to nothing), seqs renumbered.
std::vector<ev::Event> as_recorded(const definition& def,
                                   const std::vector<ev::Event>& history,
                                   const std::vector<std::size_t>& inputs) {
  std::set<std::size_t> input_at(inputs.begin(), inputs.end());
  execution_state s{def, "ex"};
  std::vector<ev::Event> out;
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (i > 0 && input_at.count(i) > 0 && !actor_records(s, history[i]))
      continue;
    auto e = history[i];
    e.set_seq(static_cast<std::int64_t>(out.size()));
    REQUIRE(s.apply(e).ok());
    out.push_back(std::move(e));
  }
  return out;
}

/// Runs one random execution; returns the number of decisions made. With
/// `check_upgrade_too`, its history (as the actor records it) must also be
/// compatible with its own definition (workflow/upgrade_check.hpp).
std::size_t run_one(std::uint64_t seed, bool check_upgrade_too = false) {
  rng r{seed * 0x9e3779b97f4a7c15ULL + 1};
  auto def = random_workflow(r);
  if (!def) return 0;
  std::int64_t now = 1000;
  std::vector<ev::Event> history{make_started_event(*def, json::object(), now)};
  std::vector<std::size_t> inputs{0};
  std::size_t decisions = 0;
  int resumed = 0;
  for (int round = 0; round < 150; ++round) {
    auto d1 = decide(*def, history, {"ex", now, {}});
    auto d2 = decide(*def, history, {"ex", now, {}});
    REQUIRE(d1.ok());
    REQUIRE(d2.ok());
    REQUIRE(d1->events.size() == d2->events.size());
    for (std::size_t i = 0; i < d1->events.size(); ++i)
      CHECK(d1->events[i].SerializeAsString()
            == d2->events[i].SerializeAsString());
    check_backed(*d1);
    ++decisions;
    history.insert(history.end(), d1->events.begin(), d1->events.end());
    execution_state s{*def, "ex"};
    for (const auto& e : history)
      REQUIRE(s.apply(e).ok());
    std::set<std::string> keys;
    for (const auto& a : s.outstanding())
      CHECK(keys.insert(key(a.step, a.map_index)).second);
    if (s.terminal()) {
      CHECK(s.outstanding().empty());
      CHECK(s.timers().empty());
      CHECK(s.approvals().empty());
      auto dl = s.dead_letter();
      if (s.status() != execution_status::failed) CHECK_FALSE(dl);
      if (!dl || resumed >= 2 || !r.chance(50)) {
        ++endings[to_string(s.status())];
        break;
      }
      // An operator retries the dead letter.
      ++resumed;
      ++resumes;
      ev::Event e;
      auto* x = e.mutable_execution_resumed();
      x->set_by("prop");
      x->set_step(dl->step);
      x->set_map_index(dl->map_index);
      x->set_dead_letter_id(static_cast<std::int64_t>(resumes));
      e.set_seq(static_cast<std::int64_t>(history.size()));
      e.set_recorded_at_ms(now);
      inputs.push_back(history.size());
      history.push_back(std::move(e));
      continue;
    }
    auto e = pick_input(r, s, now, history);
    e.set_seq(static_cast<std::int64_t>(history.size()));
    e.set_recorded_at_ms(now);
    inputs.push_back(history.size());
    history.push_back(std::move(e));
  }
  check_single_attempt(history);
  for (const auto& e : history) {
    if (e.has_step_suspended()) ++suspensions;
    if (e.has_step_scheduled() && !e.step_scheduled().resume_json().empty())
      ++resumed_attempts;
  }
  // Replay: every recorded decision is reproduced from its prefix.
  for (std::size_t b = 0; b < inputs.size(); ++b) {
    auto begin = inputs[b] + 1;
    auto end = b + 1 < inputs.size() ? inputs[b + 1] : history.size();
    std::vector<ev::Event> prefix(
      history.begin(), history.begin() + static_cast<std::ptrdiff_t>(begin));
    auto now_at = end > begin ? history[begin].recorded_at_ms() : now;
    auto d = decide(*def, prefix, {"ex", now_at, {}});
    REQUIRE(d.ok());
    REQUIRE(d->events.size() == end - begin);
    for (std::size_t i = 0; i < d->events.size(); ++i)
      CHECK(d->events[i].SerializeAsString()
            == history[begin + i].SerializeAsString());
  }
  if (check_upgrade_too) {
    auto recorded = as_recorded(*def, history, inputs);
    auto d = check_upgrade(*def, "ex", recorded);
    if (d)
      UNSCOPED_INFO("diverges at " << d->seq << " " << d->event_type << " "
                                   << d->step << ": " << d->reason);
    CHECK_FALSE(d.has_value());
    ++upgrade_checks;
  }
  return decisions;
}

} // namespace

TEST_CASE("random workflows under random interleavings replay exactly and "
          "never run two attempts of one step") {
  std::size_t valid = 0;
  std::size_t decisions = 0;
  for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
    INFO("seed " << seed << " (rerun with this seed to reproduce)");
    auto n = run_one(seed);
    if (n > 0) ++valid;
    decisions += n;
  }
  // Most random workflows are valid; a generator bug would show here.
  INFO(valid << " valid workflows, " << decisions << " decisions, "
             << endings["completed"] << " completed, " << endings["failed"]
             << " failed, " << endings["cancelled"] << " cancelled");
  CHECK(valid > 1500);
  CHECK(decisions > 8000);
  // Every ending is exercised.
  CHECK(endings["completed"] > 100);
  CHECK(endings["failed"] > 100);
  CHECK(endings["cancelled"] > 10);
  // Suspensions and dead-letter retries are exercised too.
  INFO(resumes << " executions resumed, " << suspensions << " suspensions, "
               << resumed_attempts << " attempts with resume_json");
  CHECK(resumes > 50);
  CHECK(suspensions > 200);
  CHECK(resumed_attempts > 100);
}

TEST_CASE("every random history, as the actor records it, is compatible with "
          "its own definition") {
  for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
    INFO("seed " << seed << " (rerun with this seed to reproduce)");
    run_one(seed, true);
  }
  CHECK(upgrade_checks > 1500);
}
