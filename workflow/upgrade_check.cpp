// The upgrade check: does a history replay, decision for decision, on a
// candidate definition?
//
// The fold alone is lenient (a result for a step the definition does not
// have is ignored as a late result), so folding a history on the candidate
// proves nothing. Instead the walk below keeps the candidate's state of the
// history folded so far and, at every event the decider records, asks the
// decider what the candidate would record next at that point and compares
// the two. Inputs (results, timer firings, operators' commands) must be
// ones the candidate's state awaits, as the execution actor only records
// inputs its state awaits. docs/upgrades.md states the rules.
#include "workflow/upgrade_check.hpp"

#include <algorithm>
#include <deque>
#include <limits>

#include "workflow/decider.hpp"

namespace cerebelum::workflow {

namespace ev = cerebelum::events;

std::string event_type_of(const ev::Event& e) {
  auto* oneof = e.GetDescriptor()->FindOneofByName("payload");
  if (oneof == nullptr) return "unknown";
  auto* fd = e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
  return fd != nullptr ? fd->name() : "unknown";
}

namespace {

using pc = ev::Event::PayloadCase;

/// Who writes an event: the decider, the world (an input), or either.
enum class role { input, decision, either };

role role_of(const ev::Event& e) {
  switch (e.payload_case()) {
    case pc::kStepScheduled:
    case pc::kBranchTaken:
    case pc::kDivergeTaken:
    case pc::kJumpedBack:
    case pc::kTimerStarted:
    case pc::kApprovalRequested:
    case pc::kExecutionCompleted:
    case pc::kExecutionFailed:
    case pc::kExecutionCancelled:
    case pc::kAnnotated: return role::decision;
    // Results of call/task attempts are inputs; those of set, log, fail,
    // sleep and approval steps (and failures the decider raises) are
    // decisions. The decider's approval_timed_out follows its own timer.
    case pc::kStepCompleted:
    case pc::kStepFailed:
    case pc::kApprovalTimedOut: return role::either;
    default: return role::input;
  }
}

/// The step (or stage) an event names, "" if none.
std::string named_in(const ev::Event& e) {
  switch (e.payload_case()) {
    case pc::kStepScheduled: return e.step_scheduled().step();
    case pc::kStepStarted: return e.step_started().step();
    case pc::kStepCompleted: return e.step_completed().step();
    case pc::kStepFailed: return e.step_failed().step();
    case pc::kBranchTaken: return e.branch_taken().step();
    case pc::kDivergeTaken: return e.diverge_taken().step();
    case pc::kJumpedBack: return e.jumped_back().from_step();
    case pc::kTimerStarted: return e.timer_started().step();
    case pc::kApprovalRequested: return e.approval_requested().step();
    case pc::kApprovalGranted: return e.approval_granted().step();
    case pc::kApprovalRejected: return e.approval_rejected().step();
    case pc::kApprovalTimedOut: return e.approval_timed_out().step();
    case pc::kStepSuspended: return e.step_suspended().step();
    case pc::kExecutionResumed: return e.execution_resumed().step();
    case pc::kStepProgress: return e.step_progress().step();
    case pc::kAnnotated: return e.annotated().step();
    default: return {};
  }
}

std::string in_quotes(const std::string& name) {
  return "'" + name + "'";
}

/// Why the names in `e` do not fit `def`, if they do not.
std::optional<std::string> unknown_name(const definition& def,
                                        const ev::Event& e) {
  auto step_missing = [&](const std::string& name) {
    return !name.empty() && def.step_index(name) < 0;
  };
  auto place_missing = [&](const std::string& name) {
    return !name.empty() && name != end_target && def.step_index(name) < 0
           && def.stage_index(name) < 0;
  };
  auto missing = [](const std::string& what) {
    return what + " is not in the new definition (renamed or removed)";
  };
  switch (e.payload_case()) {
    case pc::kBranchTaken:
      if (place_missing(e.branch_taken().step()))
        return missing("stage " + in_quotes(e.branch_taken().step()));
      if (place_missing(e.branch_taken().target()))
        return missing("branch target " + in_quotes(e.branch_taken().target()));
      return std::nullopt;
    case pc::kJumpedBack:
      if (place_missing(e.jumped_back().from_step()))
        return missing(in_quotes(e.jumped_back().from_step()));
      if (place_missing(e.jumped_back().to_step()))
        return missing(in_quotes(e.jumped_back().to_step()));
      return std::nullopt;
    case pc::kDivergeTaken:
      if (place_missing(e.diverge_taken().target()))
        return missing("goto target " + in_quotes(e.diverge_taken().target()));
      break;
    default: break;
  }
  auto name = named_in(e);
  if (step_missing(name)) return missing("step " + in_quotes(name));
  return std::nullopt;
}

/// Whether the recorded decision `e` is the candidate's decision `p`: the
/// same event about the same step, attempt and path. Values computed from
/// data (inputs, results, fire times, messages) are not compared.
bool same_decision(const ev::Event& e, const ev::Event& p) {
  if (e.payload_case() != p.payload_case()) return false;
  switch (e.payload_case()) {
    case pc::kStepScheduled: {
      const auto &a = e.step_scheduled(), &b = p.step_scheduled();
      return a.step() == b.step() && a.map_index() == b.map_index()
             && a.attempt() == b.attempt()
             && a.attempt_token() == b.attempt_token() && a.kind() == b.kind();
    }
    case pc::kStepCompleted: {
      const auto &a = e.step_completed(), &b = p.step_completed();
      return a.step() == b.step() && a.map_index() == b.map_index()
             && a.attempt_token() == b.attempt_token();
    }
    case pc::kStepFailed: {
      const auto &a = e.step_failed(), &b = p.step_failed();
      return a.step() == b.step() && a.map_index() == b.map_index()
             && a.attempt_token() == b.attempt_token()
             && a.error().kind() == b.error().kind();
    }
    case pc::kBranchTaken:
      return e.branch_taken().step() == p.branch_taken().step()
             && e.branch_taken().target() == p.branch_taken().target();
    case pc::kDivergeTaken: {
      const auto &a = e.diverge_taken(), &b = p.diverge_taken();
      return a.step() == b.step() && a.map_index() == b.map_index()
             && a.attempt_token() == b.attempt_token()
             && a.action() == b.action() && a.target() == b.target();
    }
    case pc::kJumpedBack:
      return e.jumped_back().from_step() == p.jumped_back().from_step()
             && e.jumped_back().to_step() == p.jumped_back().to_step()
             && e.jumped_back().iteration() == p.jumped_back().iteration();
    case pc::kTimerStarted:
      return e.timer_started().timer_id() == p.timer_started().timer_id()
             && e.timer_started().purpose() == p.timer_started().purpose()
             && e.timer_started().step() == p.timer_started().step();
    case pc::kExecutionFailed:
      return e.execution_failed().error().kind()
             == p.execution_failed().error().kind();
    case pc::kExecutionCompleted:
    case pc::kExecutionCancelled: return true;
    default: return named_in(e) == named_in(p);
  }
}

/// A recorded timer the candidate would not start at that point but whose
/// presence changes no decision: a step's start-to-close timeout (the
/// candidate may have a different one, or none) and a retry's backoff (the
/// candidate's retry policy may have another delay; the diverge_taken
/// before it was compared).
bool tolerated(const ev::Event& e) {
  if (!e.has_timer_started()) return false;
  const auto& purpose = e.timer_started().purpose();
  return purpose == "step_timeout" || purpose == "retry_backoff";
}

/// "step_scheduled of step 'b' [2] (attempt 1, kind task)".
std::string describe(const ev::Event& e) {
  auto out = event_type_of(e);
  auto name = named_in(e);
  if (!name.empty()) out += " of " + in_quotes(name);
  switch (e.payload_case()) {
    case pc::kStepScheduled: {
      const auto& s = e.step_scheduled();
      if (s.map_index() >= 0) out += "[" + std::to_string(s.map_index()) + "]";
      out += " (attempt " + std::to_string(s.attempt()) + ", kind " + s.kind()
             + ", token " + s.attempt_token() + ")";
      break;
    }
    case pc::kBranchTaken:
      out += " to " + in_quotes(e.branch_taken().target());
      break;
    case pc::kDivergeTaken:
      out += " (" + e.diverge_taken().action()
             + (e.diverge_taken().target().empty()
                  ? std::string{}
                  : " " + in_quotes(e.diverge_taken().target()))
             + ")";
      break;
    case pc::kJumpedBack:
      out += " to " + in_quotes(e.jumped_back().to_step());
      break;
    case pc::kTimerStarted:
      out += " (" + e.timer_started().purpose() + ", "
             + e.timer_started().timer_id() + ")";
      break;
    case pc::kStepFailed:
      out += " (" + e.step_failed().error().kind() + ")";
      break;
    case pc::kExecutionFailed:
      out += " (" + e.execution_failed().error().kind() + ")";
      break;
    default: break;
  }
  return out;
}

/// Whether a lost attempt was offered again is the node's policy at the
/// time (`--max-reoffers`), not the definition's: the recorded choice is
/// taken as the policy that made it.
reoffer_policy reoffers_behind(const ev::Event& e) {
  reoffer_policy p;
  if (e.has_diverge_taken())
    p.max_reoffers = e.diverge_taken().action() == "reoffer"
                       ? std::numeric_limits<std::uint32_t>::max()
                       : 0;
  return p;
}

/// What the candidate records on `s` at `now_ms`, in order (nothing: it
/// waits).
result<std::deque<ev::Event>> decide_on(const execution_state& s,
                                        std::int64_t now_ms,
                                        const reoffer_policy& reoffers = {}) {
  auto copy = s;
  auto d = decide(copy, now_ms, reoffers);
  if (!d) return d.error();
  return std::deque<ev::Event>(d->events.begin(), d->events.end());
}

/// Why the candidate's state does not await the input `e`, if it does not.
std::optional<std::string> not_awaited(const execution_state& s,
                                       const ev::Event& e) {
  auto attempt = [&](const std::string& step,
                     const std::string& token) -> std::optional<std::string> {
    if (s.accepts_result(token)) return std::nullopt;
    return "the new definition does not await attempt " + token + " of step "
           + in_quotes(step);
  };
  switch (e.payload_case()) {
    case pc::kStepCompleted:
      return attempt(e.step_completed().step(),
                     e.step_completed().attempt_token());
    case pc::kStepFailed:
      return attempt(e.step_failed().step(), e.step_failed().attempt_token());
    case pc::kStepSuspended:
      return attempt(e.step_suspended().step(),
                     e.step_suspended().attempt_token());
    case pc::kTimerFired: {
      auto timers = s.timers();
      auto id = e.timer_fired().timer_id();
      if (std::any_of(timers.begin(), timers.end(), [&](const auto& t) {
            return t.id == id;
          }))
        return std::nullopt;
      return "the new definition has no timer " + id + " at this point";
    }
    case pc::kApprovalGranted:
    case pc::kApprovalRejected: {
      auto step = named_in(e);
      const auto& all = s.approvals();
      if (std::any_of(all.begin(), all.end(), [&](const auto& a) {
            return a.step == step;
          }))
        return std::nullopt;
      return "the new definition does not await an approval of step "
             + in_quotes(step) + " at this point";
    }
    default: return std::nullopt;
  }
}

} // namespace

std::optional<upgrade_divergence>
check_upgrade(const definition& candidate, const std::string& execution_id,
              const std::vector<ev::Event>& history) {
  execution_state s{candidate, execution_id};
  // The previous event was a decision (or the start): the candidate must
  // not want to record more before the next input.
  bool deciding = false;
  std::int64_t decided_at = 0;
  auto at = [](const ev::Event& e, std::string why) {
    return upgrade_divergence{e.seq(), event_type_of(e), named_in(e),
                              std::move(why)};
  };
  auto fold = [&](const ev::Event& e) -> std::optional<std::string> {
    if (auto st = s.apply(e); !st) return st.error().message;
    return std::nullopt;
  };
  // The rest of the candidate's decision being compared. One decision can
  // record several events from one state (a step_scheduled and its timer),
  // so it is kept and consumed, and decided again on a mismatch.
  std::deque<ev::Event> expected;
  for (const auto& e : history) {
    if (e.has_execution_started()) {
      const auto& started = e.execution_started();
      if (s.started()) return at(e, "execution_started appears twice");
      if (started.workflow() != candidate.name)
        return at(e,
                  "the execution runs workflow " + in_quotes(started.workflow())
                    + ", the new definition is " + in_quotes(candidate.name));
      auto copy = e;
      copy.mutable_execution_started()->set_workflow_version(
        candidate.version_hash);
      if (auto why = fold(copy)) return at(e, *why);
      deciding = true;
      decided_at = e.recorded_at_ms();
      continue;
    }
    // An earlier migration decides nothing: the history is held to the
    // candidate as a whole, whichever versions recorded it.
    if (e.has_execution_migrated()) continue;
    if (auto why = unknown_name(candidate, e)) return at(e, *why);
    auto r = role_of(e);
    if (r != role::input) {
      bool same = !expected.empty() && same_decision(e, expected.front());
      if (!same) {
        auto again = decide_on(s, e.recorded_at_ms(), reoffers_behind(e));
        if (!again)
          return at(e, "the new definition cannot decide here: "
                         + again.error().message);
        expected = std::move(*again);
        same = !expected.empty() && same_decision(e, expected.front());
      }
      if (same || (r == role::decision && tolerated(e))) {
        if (same) expected.pop_front();
        if (auto why = fold(e)) return at(e, *why);
        deciding = true;
        decided_at = e.recorded_at_ms();
        continue;
      }
      if (r == role::decision)
        return at(e, !expected.empty()
                       ? "the new definition records "
                           + describe(expected.front()) + " here instead"
                       : "the new definition records nothing "
                         "here");
      // An input after all (a call's or task's result).
    }
    expected.clear();
    if (deciding) {
      auto next = decide_on(s, decided_at);
      if (next && !next->empty())
        return at(e, "before this input the new definition also records "
                       + describe(next->front()));
    }
    if (auto why = not_awaited(s, e)) return at(e, *why);
    if (auto why = fold(e)) return at(e, *why);
    deciding = false;
  }
  if (!s.started())
    return upgrade_divergence{0,
                              "execution_started",
                              {},
                              "the history does not begin with "
                              "execution_started"};
  // What the execution does next on the candidate: nothing, or the history
  // would already hold it (its actor decides after every append).
  auto next = decide_on(s, history.back().recorded_at_ms());
  auto past_end = history.back().seq() + 1;
  if (!next)
    return upgrade_divergence{past_end,
                              "end",
                              {},
                              "the new definition cannot decide here: "
                                + next.error().message};
  if (!next->empty())
    return upgrade_divergence{past_end, event_type_of(next->front()),
                              named_in(next->front()),
                              "the history ends here, but the new definition "
                              "would record "
                                + describe(next->front()) + " next"};
  return std::nullopt;
}

} // namespace cerebelum::workflow
