#include "tests/workflow/support.hpp"

#include <sstream>

#include <catch2/catch.hpp>

namespace cerebelum::workflow::test {

std::string alias_bomb(const std::string& name) {
  std::string y = "name: " + name
                  + "\ninput_schema:\n  type: object\n  properties:\n    x:\n"
                    "      a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
                    "\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (int level = 1; level <= 8; ++level) {
    auto prev = "*a" + std::to_string(level - 1);
    y += "      a" + std::to_string(level) + ": &a" + std::to_string(level)
         + " [";
    for (int i = 0; i < 10; ++i)
      y += (i ? "," : "") + prev;
    y += "]\n";
  }
  y += "      enum: [*a8,*a8,*a8,*a8,*a8,*a8,*a8,*a8,*a8,*a8]\n"
       "steps:\n  - name: a\n    set: \"1\"\n";
  return y;
}

namespace ev = cerebelum::events;

definition must_load(const std::string& yaml) {
  auto r = load_yaml(yaml, "test.yaml");
  if (!r) FAIL("load failed: " << r.error().to_string());
  return std::move(*r);
}

namespace {

std::string slot_name(const std::string& step, int map_index) {
  return map_index < 0 ? step : step + "[" + std::to_string(map_index) + "]";
}

} // namespace

std::string describe(const ev::Event& e) {
  using pc = ev::Event::PayloadCase;
  switch (e.payload_case()) {
    case pc::kExecutionStarted: return "started";
    case pc::kStepScheduled: {
      const auto& s = e.step_scheduled();
      return "scheduled " + slot_name(s.step(), s.map_index()) + " a"
             + std::to_string(s.attempt())
             + (s.resume_json().empty() ? "" : " resume " + s.resume_json());
    }
    case pc::kStepCompleted: {
      const auto& s = e.step_completed();
      return "completed " + slot_name(s.step(), s.map_index()) + " "
             + s.result_json();
    }
    case pc::kStepFailed: {
      const auto& s = e.step_failed();
      return "failed " + slot_name(s.step(), s.map_index()) + " "
             + s.error().kind();
    }
    case pc::kBranchTaken:
      return "branch " + e.branch_taken().step() + " -> "
             + e.branch_taken().target();
    case pc::kDivergeTaken: {
      const auto& d = e.diverge_taken();
      std::string out = "diverge " + slot_name(d.step(), d.map_index()) + " "
                        + d.action();
      if (!d.target().empty()) out += " " + d.target();
      if (d.retry_delay_ms() > 0)
        out += " +" + std::to_string(d.retry_delay_ms()) + "ms";
      return out;
    }
    case pc::kJumpedBack:
      return "jumped " + e.jumped_back().from_step() + " -> "
             + e.jumped_back().to_step() + " #"
             + std::to_string(e.jumped_back().iteration());
    case pc::kTimerStarted:
      return "timer " + e.timer_started().purpose() + " "
             + e.timer_started().step() + " @"
             + std::to_string(e.timer_started().fire_at_ms());
    case pc::kTimerFired: return "fired " + e.timer_fired().timer_id();
    case pc::kApprovalRequested:
      return "approval requested " + e.approval_requested().step();
    case pc::kApprovalGranted: return "granted " + e.approval_granted().step();
    case pc::kApprovalRejected:
      return "rejected " + e.approval_rejected().step();
    case pc::kApprovalTimedOut:
      return "approval timed out " + e.approval_timed_out().step();
    case pc::kCancelRequested: return "cancel requested";
    case pc::kExecutionCompleted:
      return "execution completed " + e.execution_completed().result_json();
    case pc::kExecutionFailed:
      return "execution failed " + e.execution_failed().error().kind();
    case pc::kExecutionCancelled: return "execution cancelled";
    case pc::kAnnotated:
      return "log " + e.annotated().level() + " " + e.annotated().message();
    case pc::kStepSuspended: {
      const auto& s = e.step_suspended();
      return "suspended " + slot_name(s.step(), s.map_index()) + " a"
             + std::to_string(s.attempt()) + " " + s.wait_key();
    }
    case pc::kExecutionResumed:
      return "execution resumed "
             + slot_name(e.execution_resumed().step(),
                         e.execution_resumed().map_index());
    case pc::kStepProgress: return "progress " + e.step_progress().step();
    default: return "other";
  }
}

std::string describe(const command& c) {
  struct visitor {
    std::string operator()(const run_step_command& r) const {
      return std::string{"run "} + to_string(r.kind) + " " + r.target + " "
             + slot_name(r.step, r.map_index) + " a" + std::to_string(r.attempt)
             + " " + r.input.dump()
             + (r.resume.empty() ? "" : " resume " + r.resume.dump());
    }
    std::string operator()(const start_timer_command& t) const {
      return "timer " + t.purpose + " " + t.step + " @"
             + std::to_string(t.fire_at_ms);
    }
    std::string operator()(const request_approval_command& a) const {
      return "approval " + a.step + " " + a.data.dump();
    }
    std::string operator()(const finish_command& f) const {
      return std::string{"finish "} + to_string(f.status);
    }
  };
  return std::visit(visitor{}, c);
}

harness::harness(definition def, json input, std::string execution_id)
  : def_(std::move(def)), execution_id_(std::move(execution_id)) {
  history_.push_back(make_started_event(def_, input, now));
}

decision harness::decide() {
  auto d = workflow::decide(def_, history_, {execution_id_, now, reoffers});
  if (!d) FAIL("decide failed: " << d.error().to_string());
  for (const auto& e : d->events)
    history_.push_back(e);
  for (const auto& c : d->commands)
    commands_.push_back(describe(c));
  return std::move(*d);
}

void harness::append(ev::Event e) {
  e.set_seq(static_cast<std::int64_t>(history_.size()));
  e.set_recorded_at_ms(now);
  history_.push_back(std::move(e));
}

execution_state harness::state() const {
  execution_state s{def_, execution_id_};
  for (const auto& e : history_)
    REQUIRE(s.apply(e).ok());
  return s;
}

attempt_ref harness::outstanding(const std::string& step, int map_index) const {
  for (const auto& a : state().outstanding())
    if (a.step == step && a.map_index == map_index) return a;
  FAIL("no outstanding attempt of " << slot_name(step, map_index));
  return {};
}

attempt_ref harness::stale(const std::string& step, int map_index) const {
  std::vector<std::string> current;
  for (const auto& a : state().outstanding())
    current.push_back(a.token);
  for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
    if (!it->has_step_scheduled()) continue;
    const auto& s = it->step_scheduled();
    if (s.step() != step || s.map_index() != map_index) continue;
    if (std::find(current.begin(), current.end(), s.attempt_token())
        != current.end())
      continue;
    return {step, map_index, s.attempt(), s.attempt_token(), step_kind::call};
  }
  FAIL("no stale attempt of " << slot_name(step, map_index));
  return {};
}

namespace {

/// Splits "name[3]" into name and index.
std::pair<std::string, int> parse_slot(const std::string& text) {
  auto open = text.find('[');
  if (open == std::string::npos) return {text, -1};
  return {text.substr(0, open), std::stoi(text.substr(open + 1))};
}

} // namespace

decision harness::run(const std::string& line) {
  std::istringstream in{line};
  std::string verb, arg;
  in >> verb >> arg;
  std::string rest;
  std::getline(in, rest);
  if (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
  auto [step, index] = parse_slot(arg);
  ev::Event e;
  if (verb == "ok" || verb == "late") {
    auto a = verb == "ok" ? outstanding(step, index) : stale(step, index);
    auto* c = e.mutable_step_completed();
    c->set_step(step);
    c->set_attempt(a.attempt);
    c->set_attempt_token(a.token);
    c->set_result_json(rest.empty() ? "null" : rest);
    c->set_map_index(index);
    c->set_completed_at_ms(now);
  } else if (verb == "err" || verb == "lost") {
    auto a = outstanding(step, index);
    std::istringstream r{rest};
    std::string kind, flag;
    r >> kind >> flag;
    if (verb == "lost") {
      flag = "retryable";
      e.mutable_step_failed()->set_lost(true);
    }
    auto* f = e.mutable_step_failed();
    f->set_step(step);
    f->set_attempt(a.attempt);
    f->set_attempt_token(a.token);
    f->set_map_index(index);
    f->mutable_error()->set_kind(kind);
    f->mutable_error()->set_retryable(flag == "retryable");
    f->mutable_error()->set_message("boom: " + kind);
  } else if (verb == "fire") {
    std::optional<pending_timer> first;
    for (const auto& t : state().timers())
      if (t.step == step && (!first || t.fire_at_ms < first->fire_at_ms))
        first = t;
    if (!first) FAIL("no timer for " << step);
    now = std::max(now, first->fire_at_ms);
    e.mutable_timer_fired()->set_timer_id(first->id);
    e.mutable_timer_fired()->set_fired_at_ms(now);
  } else if (verb == "grant") {
    e.mutable_approval_granted()->set_step(step);
    e.mutable_approval_granted()->set_by("ops");
    e.mutable_approval_granted()->set_data_json(rest.empty() ? "null" : rest);
  } else if (verb == "reject") {
    e.mutable_approval_rejected()->set_step(step);
    e.mutable_approval_rejected()->set_by("ops");
    e.mutable_approval_rejected()->set_reason("no");
  } else if (verb == "timeout") {
    e.mutable_approval_timed_out()->set_step(step);
  } else if (verb == "suspend") {
    // suspend STEP[i] KEY sleep MS | suspend STEP[i] KEY approval [MS [DATA]]
    auto a = outstanding(step, index);
    std::istringstream r{rest};
    std::string key, how;
    std::int64_t ms = 0;
    r >> key >> how >> ms;
    std::string data;
    std::getline(r, data);
    if (!data.empty() && data.front() == ' ') data.erase(0, 1);
    auto* s = e.mutable_step_suspended();
    s->set_step(step);
    s->set_map_index(index);
    s->set_attempt(a.attempt);
    s->set_attempt_token(a.token);
    s->set_wait_key(key);
    s->set_suspended_at_ms(now);
    s->set_worker_id("w-1");
    if (how == "sleep") {
      s->set_sleep_ms(ms);
    } else if (how == "approval") {
      s->set_approval(true);
      s->set_approval_timeout_ms(ms);
      s->set_approval_data_json(data);
    } else {
      FAIL("suspend needs sleep or approval, got " << how);
    }
  } else if (verb == "resume") {
    auto* r = e.mutable_execution_resumed();
    r->set_by("ops");
    r->set_step(step);
    r->set_map_index(index);
    r->set_dead_letter_id(7);
    r->set_resumed_at_ms(now);
  } else if (verb == "progress") {
    auto a = outstanding(step, index);
    auto* p = e.mutable_step_progress();
    p->set_step(step);
    p->set_attempt_token(a.token);
    p->set_details_json(rest.empty() ? "{}" : rest);
    p->set_worker_id("w-1");
    p->set_at_ms(now);
  } else if (verb == "cancel") {
    e.mutable_cancel_requested()->set_by("ops");
    e.mutable_cancel_requested()->set_reason("test");
  } else if (verb == "wait") {
    now += std::stoll(arg);
    return decide();
  } else {
    FAIL("unknown script verb " << verb);
  }
  append(std::move(e));
  return decide();
}

std::vector<std::string>
harness::run_all(const std::vector<std::string>& lines) {
  if (history_.size() == 1) decide();
  for (const auto& l : lines)
    run(l);
  return events();
}

std::vector<std::string> harness::events() const {
  std::vector<std::string> out;
  for (std::size_t i = 1; i < history_.size(); ++i)
    out.push_back(describe(history_[i]));
  return out;
}

} // namespace cerebelum::workflow::test
