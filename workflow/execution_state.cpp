// The fold: execution state as a pure function of the history.
#include "workflow/execution_state.hpp"

#include <algorithm>

#include "workflow/safe_text.hpp"

namespace cerebelum::workflow {

namespace ev = cerebelum::events;

const char* to_string(execution_status s) {
  switch (s) {
    case execution_status::running: return "running";
    case execution_status::sleeping: return "sleeping";
    case execution_status::awaiting_approval: return "awaiting_approval";
    case execution_status::completed: return "completed";
    case execution_status::failed: return "failed";
    case execution_status::cancelled: return "cancelled";
  }
  return "?";
}

json parse_json_text(const std::string& text) {
  if (text.empty()) return nullptr;
  // Stored text was checked when it entered; the limits still apply so that
  // a history written before they existed cannot overflow a stack here.
  auto v = parse_json(text, "stored JSON");
  return v ? std::move(v.value()) : json(nullptr);
}

std::string json_text(const json& value) {
  return safe_dump(value);
}

json step_error::to_json() const {
  return {{"kind", kind},
          {"message", message},
          {"details", details},
          {"retryable", retryable}};
}

step_error step_error::from_proto(const ev::ErrorInfo& e) {
  return {e.kind(), e.message(), parse_json_text(e.details_json()),
          e.retryable()};
}

void step_error::to_proto(ev::ErrorInfo& out) const {
  out.set_kind(kind);
  out.set_message(message);
  if (!details.is_null()) out.set_details_json(json_text(details));
  out.set_retryable(retryable);
}

execution_state::execution_state(const definition& def,
                                 std::string execution_id)
  : def_(&def),
    execution_id_(std::move(execution_id)),
    steps_(def.steps.size()) {}

bool execution_state::terminal() const noexcept {
  return final_.has_value();
}

execution_status execution_state::status() const {
  if (final_) return *final_;
  bool running = false;
  bool sleeping = false;
  for (const auto& a : outstanding()) {
    if (a.kind == step_kind::sleep)
      sleeping = true;
    else if (a.kind != step_kind::approval)
      running = true;
  }
  if (!running && approval_) return execution_status::awaiting_approval;
  if (!running && (sleeping || !timers_.empty()))
    return execution_status::sleeping;
  return execution_status::running;
}

std::vector<attempt_ref> execution_state::outstanding() const {
  std::vector<attempt_ref> out;
  if (final_ || stage_ < 0 || stage_ >= static_cast<int>(def_->stages.size()))
    return out;
  for (auto idx : def_->stages[static_cast<std::size_t>(stage_)].steps) {
    const auto& s = def_->steps[idx];
    const auto& rt = steps_[idx];
    if (s.kind == step_kind::map) {
      for (std::size_t i = 0; i < rt.children.size(); ++i)
        if (rt.children[i].phase == slot_phase::scheduled)
          out.push_back({s.name, static_cast<std::int32_t>(i),
                         rt.children[i].attempt, rt.children[i].token,
                         s.child_kind});
    } else if (rt.self.phase == slot_phase::scheduled) {
      out.push_back({s.name, -1, rt.self.attempt, rt.self.token, s.kind});
    }
  }
  return out;
}

bool execution_state::accepts_result(const std::string& token) const {
  for (const auto& a : outstanding())
    if (a.token == token) return true;
  return false;
}

std::vector<pending_timer> execution_state::timers() const {
  std::vector<pending_timer> out;
  for (const auto& [id, t] : timers_)
    out.push_back(t);
  return out;
}

std::optional<std::int64_t> execution_state::next_wake_ms() const {
  std::optional<std::int64_t> out;
  for (const auto& [id, t] : timers_)
    if (!out || t.fire_at_ms < *out) out = t.fire_at_ms;
  return out;
}

std::string execution_state::phase() const {
  if (stage_ < 0) return {};
  if (stage_ >= static_cast<int>(def_->stages.size()))
    return std::string{end_target};
  return def_->stages[static_cast<std::size_t>(stage_)].name;
}

const json* execution_state::error_of(const std::string& step) const {
  auto it = errors_.find(step);
  return it == errors_.end() ? nullptr : &*it;
}

void execution_state::set_fault(std::string msg) {
  if (!fault_) fault_ = diagnostic{{}, 0, 0, {}, std::move(msg)};
}

execution_state::slot* execution_state::find_slot(const std::string& step,
                                                  std::int32_t map_index) {
  auto idx = def_->step_index(step);
  if (idx < 0) return nullptr;
  auto& rt = steps_[static_cast<std::size_t>(idx)];
  if (map_index < 0) return &rt.self;
  if (static_cast<std::size_t>(map_index) >= rt.children.size()) return nullptr;
  return &rt.children[static_cast<std::size_t>(map_index)];
}

void execution_state::enter_stage(int stage) {
  branch_pending_ = false;
  // Leaving a stage abandons whatever is still outstanding in it; late
  // results of those attempts no longer match any slot.
  if (stage_ >= 0 && stage_ < static_cast<int>(def_->stages.size()))
    for (auto idx : def_->stages[static_cast<std::size_t>(stage_)].steps) {
      drop_timers_of(def_->steps[idx].name);
      auto visit = steps_[idx].visit;
      steps_[idx] = step_runtime{};
      steps_[idx].visit = visit;
    }
  stage_ = stage;
  if (stage < 0 || stage >= static_cast<int>(def_->stages.size())) return;
  for (auto idx : def_->stages[static_cast<std::size_t>(stage)].steps) {
    auto& rt = steps_[idx];
    drop_timers_of(def_->steps[idx].name);
    auto visit = rt.visit + 1;
    rt = step_runtime{};
    rt.visit = visit;
  }
}

void execution_state::drop_timers_of_token(const std::string& token) {
  std::erase_if(timers_, [&](const auto& kv) {
    auto colon = kv.first.find(':');
    return colon != std::string::npos && kv.first.substr(colon + 1) == token;
  });
}

void execution_state::drop_timers_of(const std::string& step) {
  std::erase_if(timers_, [&](const auto& kv) {
    return kv.second.step == step;
  });
  drop_approvals([&](const pending_approval& a) {
    return a.step == step;
  });
}

void execution_state::drop_approvals(
  const std::function<bool(const pending_approval&)>& f) {
  std::erase_if(approvals_, f);
  if (approvals_.empty())
    approval_.reset();
  else
    approval_ = approvals_.front();
}

/// Once every step of the current stage is done: branch or move on.
void execution_state::maybe_advance() {
  if (final_ || stage_ < 0 || stage_ >= static_cast<int>(def_->stages.size()))
    return;
  const auto& st = def_->stages[static_cast<std::size_t>(stage_)];
  for (auto idx : st.steps)
    if (steps_[idx].self.phase != slot_phase::done) return;
  if (!st.branch.empty())
    branch_pending_ = true;
  else
    enter_stage(stage_ + 1);
}

workflow::result<ok_t> execution_state::apply(const ev::Event& e) {
  // Positions count even when an input event arrives without its seq.
  next_seq_ = std::max(next_seq_ + 1, e.seq() + 1);
  using pc = ev::Event::PayloadCase;
  auto c = e.payload_case();
  if (!started_ && c != pc::kExecutionStarted && c != pc::kAnnotated
      && c != pc::PAYLOAD_NOT_SET)
    set_fault("history does not begin with execution_started");
  switch (c) {
    case pc::kExecutionStarted: on_started(e.execution_started()); break;
    case pc::kStepScheduled: on_scheduled(e.step_scheduled()); break;
    case pc::kStepCompleted: on_completed(e.step_completed()); break;
    case pc::kStepFailed: on_failed(e.step_failed()); break;
    case pc::kDivergeTaken: on_diverge(e.diverge_taken()); break;
    case pc::kBranchTaken: on_branch(e.branch_taken()); break;
    case pc::kJumpedBack: iterations_ = e.jumped_back().iteration(); break;
    case pc::kTimerStarted: on_timer_started(e.timer_started()); break;
    case pc::kTimerFired: on_timer_fired(e.timer_fired()); break;
    case pc::kApprovalRequested:
    case pc::kApprovalGranted:
    case pc::kApprovalRejected:
    case pc::kApprovalTimedOut: on_approval(e); break;
    case pc::kCancelRequested:
      if (!final_ && !cancel_requested_) {
        cancel_requested_ = true;
        cancel_by_ = e.cancel_requested().by();
        cancel_by_note_ = e.cancel_requested().by_note();
        cancel_reason_ = e.cancel_requested().reason();
      }
      break;
    case pc::kExecutionCompleted:
    case pc::kExecutionFailed:
    case pc::kExecutionCancelled: on_terminal(e); break;
    case pc::kStepSuspended: on_suspended(e.step_suspended()); break;
    case pc::kExecutionResumed: on_resumed(e.execution_resumed()); break;
    case pc::kExecutionMigrated: on_migrated(e.execution_migrated()); break;
    case pc::kStepStarted:
    case pc::kStepProgress:
    case pc::kAnnotated: break;
    case pc::PAYLOAD_NOT_SET: {
      // An event this node does not know. Optional codes (>= 1000) are
      // skipped; an unknown core code means a newer node wrote the history.
      const auto& unknown = e.GetReflection()->GetUnknownFields(e);
      for (int i = 0; i < unknown.field_count(); ++i)
        if (unknown.field(i).number() < 1000)
          set_fault("unknown core event type "
                    + std::to_string(unknown.field(i).number())
                    + " (the history needs a newer node)");
      break;
    }
  }
  if (fault_) return *fault_;
  return ok_t{};
}

void execution_state::expect_versions(std::vector<std::uint64_t> chain) {
  chain_ = std::move(chain);
}

void execution_state::on_started(const ev::ExecutionStarted& e) {
  if (started_) return set_fault("execution_started appears twice");
  auto first = chain_.empty() ? def_->version_hash : chain_.front();
  if (e.workflow_version() != first)
    return set_fault("definition version mismatch: the execution started "
                     "with version "
                     + std::to_string(e.workflow_version())
                     + ", this definition is "
                     + std::to_string(def_->version_hash));
  started_ = true;
  versions_ = {e.workflow_version()};
  input_ = parse_json_text(e.input_json());
  started_at_ms_ = e.started_at_ms();
  enter_stage(0);
}

void execution_state::on_scheduled(const ev::StepScheduled& e) {
  auto idx = def_->step_index(e.step());
  if (idx < 0) return set_fault("step_scheduled for unknown step " + e.step());
  auto& rt = steps_[static_cast<std::size_t>(idx)];
  const auto& s = def_->steps[static_cast<std::size_t>(idx)];
  if (s.kind == step_kind::map && e.map_index() < 0) {
    rt.items = parse_json_text(e.input_json());
    auto n = rt.items.is_array() ? rt.items.size() : 0;
    rt.children.assign(n, slot{});
    rt.child_results.assign(n, json(nullptr));
  }
  auto* sl = find_slot(e.step(), e.map_index());
  if (!sl) return set_fault("step_scheduled for unknown map child");
  sl->phase = slot_phase::scheduled;
  sl->attempt = e.attempt();
  sl->token = e.attempt_token();
  sl->pending_result = nullptr;
  sl->record_timeout = false;
  sl->scheduled = e;
  sl->suspension.Clear();
  auto resume = parse_json_text(e.resume_json());
  sl->resume = resume.is_object() ? std::move(resume) : json::object();
}

void execution_state::on_completed(const ev::StepCompleted& e) {
  auto* sl = find_slot(e.step(), e.map_index());
  if (!sl || sl->token != e.attempt_token()
      || (sl->phase != slot_phase::scheduled
          && sl->phase != slot_phase::resolve_ok))
    return; // a late result of an old attempt: rejected
  sl->phase = slot_phase::done;
  auto value = parse_json_text(e.result_json());
  auto idx = static_cast<std::size_t>(def_->step_index(e.step()));
  drop_timers_of_token(e.attempt_token());
  if (e.map_index() >= 0) {
    steps_[idx].child_results[static_cast<std::size_t>(e.map_index())]
      = std::move(value);
    return;
  }
  results_[e.step()] = std::move(value);
  maybe_advance();
}

void execution_state::on_failed(const ev::StepFailed& e) {
  auto* sl = find_slot(e.step(), e.map_index());
  if (!sl || sl->token != e.attempt_token()
      || (sl->phase != slot_phase::scheduled
          && sl->phase != slot_phase::resolve_fail))
    return;
  sl->phase = slot_phase::failed;
  sl->error = step_error::from_proto(e.error());
  sl->lost = e.lost();
  ++sl->failures;
  errors_[e.step()] = sl->error.to_json();
  drop_timers_of_token(e.attempt_token());
  drop_approvals([&](const pending_approval& a) {
    return a.token == e.attempt_token();
  });
}

void execution_state::on_diverge(const ev::DivergeTaken& e) {
  auto* sl = find_slot(e.step(), e.map_index());
  if (!sl || sl->token != e.attempt_token() || sl->phase != slot_phase::failed)
    return set_fault("diverge_taken for a step that has not failed: "
                     + e.step());
  const auto& action = e.action();
  if (action == "retry" || action == "reoffer") {
    sl->phase = e.retry_delay_ms() > 0 ? slot_phase::backoff
                                       : slot_phase::retry_ready;
    if (action == "reoffer") {
      // The engine lost the attempt: it does not count against the budget.
      if (sl->failures > 0) --sl->failures;
      ++sl->reoffers;
    }
  } else if (action == "continue") {
    sl->phase = slot_phase::done;
    auto idx = static_cast<std::size_t>(def_->step_index(e.step()));
    if (e.map_index() >= 0) {
      steps_[idx].child_results[static_cast<std::size_t>(e.map_index())]
        = nullptr;
    } else {
      results_[e.step()] = nullptr;
      maybe_advance();
    }
  } else if (action == "fail") {
    sl->phase = slot_phase::failed_final;
  } else if (action == "goto") {
    auto target = def_->stage_index(e.target());
    if (target < 0) return set_fault("diverge goto to unknown " + e.target());
    enter_stage(target);
  } else {
    set_fault("unknown diverge action " + action);
  }
}

void execution_state::on_branch(const ev::BranchTaken& e) {
  if (!branch_pending_) return set_fault("branch_taken while no branch is due");
  auto n = static_cast<int>(def_->stages.size());
  auto target = e.target() == end_target ? n : def_->stage_index(e.target());
  if (target < 0) return set_fault("branch to unknown step " + e.target());
  enter_stage(target);
}

void execution_state::on_timer_started(const ev::TimerStarted& e) {
  timers_[e.timer_id()] = pending_timer{e.timer_id(), e.purpose(), e.step(),
                                        e.fire_at_ms()};
  if (e.purpose() == "step_resume") {
    auto colon = e.timer_id().find(':');
    auto* sl = colon == std::string::npos
                 ? nullptr
                 : slot_by_token(e.step(), e.timer_id().substr(colon + 1));
    if (sl && sl->phase == slot_phase::suspending)
      sl->phase = slot_phase::suspended;
  }
}

/// The slot of `step` whose current attempt token is `token`.
execution_state::slot*
execution_state::slot_by_token(const std::string& step,
                               const std::string& token) {
  auto idx = def_->step_index(step);
  if (idx < 0) return nullptr;
  auto& rt = steps_[static_cast<std::size_t>(idx)];
  if (rt.self.token == token) return &rt.self;
  for (auto& c : rt.children)
    if (c.token == token) return &c;
  return nullptr;
}

void execution_state::on_timer_fired(const ev::TimerFired& e) {
  auto it = timers_.find(e.timer_id());
  if (it == timers_.end()) return; // obsolete or already fired
  auto t = it->second;
  timers_.erase(it);
  auto colon = t.id.find(':');
  auto token = colon == std::string::npos ? std::string{}
                                          : t.id.substr(colon + 1);
  auto* sl = slot_by_token(t.step, token);
  if (!sl) return;
  if (t.purpose == "retry_backoff") {
    if (sl->phase == slot_phase::backoff) sl->phase = slot_phase::retry_ready;
    return;
  }
  if (sl->phase == slot_phase::suspended) {
    // A suspended task attempt: its sleep is over, or its approval expired.
    if (t.purpose == "step_resume") {
      sl->resume[sl->suspension.wait_key()] = true;
      sl->phase = slot_phase::resume_ready;
    } else if (t.purpose == "approval_timeout") {
      sl->phase = slot_phase::resolve_fail;
      sl->error = {"approval_timeout",
                   "no decision before the approval timeout",
                   json{{"wait_key", sl->suspension.wait_key()}}, false};
      sl->record_timeout = true;
      drop_approvals([&](const pending_approval& a) {
        return a.token == token;
      });
    }
    return;
  }
  if (sl->phase != slot_phase::scheduled) return;
  if (t.purpose == "sleep") {
    sl->phase = slot_phase::resolve_ok;
    sl->pending_result = nullptr;
  } else if (t.purpose == "approval_timeout") {
    sl->phase = slot_phase::resolve_fail;
    sl->error = {"approval_timeout", "no decision before the approval timeout",
                 nullptr, false};
    sl->record_timeout = true;
    drop_approvals([&](const pending_approval& a) {
      return a.token == token;
    });
  } else if (t.purpose == "step_timeout") {
    sl->phase = slot_phase::resolve_fail;
    sl->error = {"timeout", "the attempt did not finish in time", nullptr,
                 true};
  }
}

void execution_state::on_approval_requested(const ev::ApprovalRequested& r) {
  auto idx = def_->step_index(r.step());
  if (idx < 0)
    return set_fault("approval_requested for unknown step " + r.step());
  const auto& sp = def_->steps[static_cast<std::size_t>(idx)];
  auto& rt = steps_[static_cast<std::size_t>(idx)];
  pending_approval pa{r.step(),
                      parse_json_text(r.data_json()),
                      r.requested_at_ms(),
                      r.timeout_ms(),
                      -1,
                      {}};
  if (sp.kind == step_kind::approval) {
    pa.token = rt.self.token;
  } else {
    // A task attempt that suspended for an approval: the first slot of the
    // step whose wait is not armed yet (the decider arms them in this order).
    auto waits = [](const slot& sl) {
      return sl.phase == slot_phase::suspending && sl.suspension.approval();
    };
    slot* sl = nullptr;
    if (waits(rt.self)) {
      sl = &rt.self;
    } else {
      for (std::size_t i = 0; i < rt.children.size() && !sl; ++i)
        if (waits(rt.children[i])) {
          sl = &rt.children[i];
          pa.map_index = static_cast<std::int32_t>(i);
        }
    }
    if (!sl)
      return set_fault("approval_requested for step " + r.step()
                       + ", which waits for no approval");
    sl->phase = slot_phase::suspended;
    pa.token = sl->token;
  }
  drop_approvals([&](const pending_approval& a) {
    return a.token == pa.token;
  });
  approvals_.push_back(std::move(pa));
  approval_ = approvals_.front();
}

void execution_state::on_approval(const ev::Event& e) {
  using pc = ev::Event::PayloadCase;
  if (e.payload_case() == pc::kApprovalRequested)
    return on_approval_requested(e.approval_requested());
  std::string step = e.payload_case() == pc::kApprovalGranted
                       ? e.approval_granted().step()
                     : e.payload_case() == pc::kApprovalRejected
                       ? e.approval_rejected().step()
                       : e.approval_timed_out().step();
  if (e.payload_case() == pc::kApprovalTimedOut) {
    // The decider's own record of a timeout its timer already applied.
    auto idx = def_->step_index(step);
    if (idx >= 0) {
      const auto& rt = steps_[static_cast<std::size_t>(idx)];
      auto recorded = [](const slot& sl) {
        return sl.phase == slot_phase::resolve_fail && sl.record_timeout;
      };
      if (recorded(rt.self)
          || std::any_of(rt.children.begin(), rt.children.end(), recorded))
        return;
    }
  }
  // The oldest pending approval of that step; none: not awaited, ignored.
  auto it = std::find_if(approvals_.begin(), approvals_.end(),
                         [&](const auto& a) {
                           return a.step == step;
                         });
  if (it == approvals_.end()) return;
  auto token = it->token;
  auto* sl = slot_by_token(step, token);
  if (!sl
      || (sl->phase != slot_phase::scheduled
          && sl->phase != slot_phase::suspended))
    return;
  bool suspended = sl->phase == slot_phase::suspended;
  drop_approvals([&](const pending_approval& a) {
    return a.token == token;
  });
  drop_timers_of_token(token);
  if (e.payload_case() == pc::kApprovalGranted) {
    const auto& g = e.approval_granted();
    auto data = parse_json_text(g.data_json());
    if (suspended) {
      sl->resume[sl->suspension.wait_key()] = data.is_null() ? json(true)
                                                             : std::move(data);
      sl->phase = slot_phase::resume_ready;
      return;
    }
    sl->phase = slot_phase::resolve_ok;
    sl->pending_result
      = {{"approved", true}, {"by", g.by()}, {"data", std::move(data)}};
  } else if (e.payload_case() == pc::kApprovalRejected) {
    const auto& r = e.approval_rejected();
    sl->phase = slot_phase::resolve_fail;
    sl->error = {"approval_rejected", r.reason(), json{{"by", r.by()}}, false};
    if (suspended) sl->error.details["wait_key"] = sl->suspension.wait_key();
  } else {
    sl->phase = slot_phase::resolve_fail;
    sl->error = {"approval_timeout", "no decision before the approval timeout",
                 nullptr, false};
    if (suspended)
      sl->error.details = json{{"wait_key", sl->suspension.wait_key()}};
  }
}

void execution_state::on_suspended(const ev::StepSuspended& e) {
  auto* sl = find_slot(e.step(), e.map_index());
  if (!sl || sl->token != e.attempt_token()
      || sl->phase != slot_phase::scheduled)
    return; // not awaited (late or abandoned attempt): ignored
  const auto& sp
    = def_->steps[static_cast<std::size_t>(def_->step_index(e.step()))];
  auto kind = e.map_index() >= 0 ? sp.child_kind : sp.kind;
  if (kind != step_kind::task) return; // only task attempts suspend
  // The attempt is over: its start-to-close timer goes with it.
  drop_timers_of_token(e.attempt_token());
  std::string problem;
  const auto& key = e.wait_key();
  if (key.empty())
    problem = "step_suspended without a wait_key";
  else if (sl->resume.contains(key))
    problem = "wait_key '" + key
              + "' was already resumed in an earlier attempt";
  else if (e.sleep_ms() < 0 || e.approval_timeout_ms() < 0)
    problem = "step_suspended with a negative duration";
  else if (e.sleep_ms() > 0 && e.approval())
    problem = "step_suspended asks for both a sleep and an approval";
  else if (e.sleep_ms() == 0 && !e.approval())
    problem = "step_suspended asks for neither a sleep (sleep_ms > 0) nor an "
              "approval";
  if (!problem.empty()) {
    // Recorded as a failure of the attempt (the decider writes step_failed).
    sl->phase = slot_phase::resolve_fail;
    sl->error = {"invalid_suspension", problem, json{{"wait_key", key}}, false};
    sl->record_timeout = false;
    return;
  }
  sl->phase = slot_phase::suspending;
  sl->suspension = e;
}

void execution_state::on_migrated(const ev::ExecutionMigrated& e) {
  auto k = versions_.size();
  if (final_ || k == 0 || k >= chain_.size() || e.from_version() != versions_.back()
      || e.to_version() != chain_[k])
    return set_fault("execution_migrated from version "
                     + std::to_string(e.from_version()) + " to "
                     + std::to_string(e.to_version())
                     + " does not lead to this definition (version "
                     + std::to_string(def_->version_hash) + ")");
  versions_.push_back(e.to_version());
}

void execution_state::on_resumed(const ev::ExecutionResumed& e) {
  if (!final_ || *final_ != execution_status::failed)
    return set_fault(std::string{"execution_resumed while the execution is "}
                     + to_string(status()) + ", not failed");
  auto* target = find_slot(e.step(), e.map_index());
  if (!target || target->phase != slot_phase::failed_final)
    return set_fault("execution_resumed for step " + e.step()
                     + (e.map_index() >= 0
                          ? "[" + std::to_string(e.map_index()) + "]"
                          : std::string{})
                     + ", which did not fail the execution");
  final_.reset();
  error_.reset();
  // Failing abandoned what else ran in the stage and dropped its timers and
  // approvals: those slots start a new attempt (not counted as a failure).
  auto restart = [](slot& sl) {
    switch (sl.phase) {
      case slot_phase::scheduled:
      case slot_phase::suspending:
      case slot_phase::suspended:
      case slot_phase::backoff: sl.phase = slot_phase::retry_ready; break;
      default: break;
    }
  };
  for (auto idx : def_->stages[static_cast<std::size_t>(stage_)].steps) {
    auto& rt = steps_[idx];
    // A scheduled map step is running its children: restart those instead.
    if (def_->steps[idx].kind == step_kind::map
        && rt.self.phase == slot_phase::scheduled) {
      for (auto& c : rt.children)
        if (&c != target) restart(c);
    } else if (&rt.self != target) {
      restart(rt.self);
    }
  }
  // The failed step: a new attempt with a fresh retry budget.
  target->failures = 0;
  target->reoffers = 0;
  target->phase = slot_phase::retry_ready;
}

std::optional<dead_letter_info> execution_state::dead_letter() const {
  if (final_ != execution_status::failed || stage_ < 0
      || stage_ >= static_cast<int>(def_->stages.size()))
    return std::nullopt;
  auto info = [](const step& sp, const slot& sl, std::int32_t map_index) {
    const auto& sc = sl.scheduled;
    return dead_letter_info{sp.name,
                            map_index,
                            sl.attempt,
                            sl.token,
                            sc.task_queue().empty() ? sp.task_queue
                                                    : sc.task_queue(),
                            sc.target().empty() ? sp.target : sc.target(),
                            parse_json_text(sc.input_json()),
                            sl.error};
  };
  for (auto idx : def_->stages[static_cast<std::size_t>(stage_)].steps) {
    const auto& sp = def_->steps[idx];
    const auto& rt = steps_[idx];
    if (sp.kind == step_kind::task && rt.self.phase == slot_phase::failed_final)
      return info(sp, rt.self, -1);
    if (sp.kind == step_kind::map && sp.child_kind == step_kind::task)
      for (std::size_t i = 0; i < rt.children.size(); ++i)
        if (rt.children[i].phase == slot_phase::failed_final)
          return info(sp, rt.children[i], static_cast<std::int32_t>(i));
  }
  return std::nullopt;
}

void execution_state::on_terminal(const ev::Event& e) {
  if (final_) return;
  using pc = ev::Event::PayloadCase;
  if (e.payload_case() == pc::kExecutionCompleted) {
    final_ = execution_status::completed;
    result_ = parse_json_text(e.execution_completed().result_json());
  } else if (e.payload_case() == pc::kExecutionFailed) {
    final_ = execution_status::failed;
    error_ = step_error::from_proto(e.execution_failed().error());
  } else {
    final_ = execution_status::cancelled;
  }
  timers_.clear();
  approvals_.clear();
  approval_.reset();
}

json execution_state::snapshot() const {
  auto slot_json = [](const slot& s) {
    return json{{"phase", static_cast<int>(s.phase)},
                {"attempt", s.attempt},
                {"token", s.token},
                {"pending_result", s.pending_result},
                {"error", s.error.to_json()},
                {"record_timeout", s.record_timeout},
                {"failures", s.failures},
                {"reoffers", s.reoffers},
                {"lost", s.lost},
                {"resume", s.resume},
                {"suspension",
                 {s.suspension.wait_key(), s.suspension.sleep_ms(),
                  s.suspension.approval(), s.suspension.approval_data_json(),
                  s.suspension.approval_timeout_ms(),
                  s.suspension.suspended_at_ms()}}};
  };
  json steps = json::object();
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    const auto& rt = steps_[i];
    json children = json::array();
    for (const auto& c : rt.children)
      children.push_back(slot_json(c));
    steps[def_->steps[i].name] = {{"visit", rt.visit},
                                  {"self", slot_json(rt.self)},
                                  {"items", rt.items},
                                  {"children", children},
                                  {"child_results", rt.child_results}};
  }
  json timers = json::array();
  for (const auto& [id, t] : timers_)
    timers.push_back({id, t.purpose, t.step, t.fire_at_ms});
  json approvals = json::array();
  for (const auto& a : approvals_)
    approvals.push_back(
      {a.step, a.data, a.requested_at_ms, a.timeout_ms, a.map_index, a.token});
  return {{"started", started_},
          {"input", input_},
          {"stage", stage_},
          {"branch_pending", branch_pending_},
          {"cancel", cancel_requested_},
          {"iterations", iterations_},
          {"status", to_string(status())},
          {"result", result_},
          {"error", error_ ? error_->to_json() : json(nullptr)},
          {"results", results_},
          {"errors", errors_},
          {"steps", steps},
          {"timers", timers},
          {"approvals", approvals},
          {"next_seq", next_seq_}};
}

} // namespace cerebelum::workflow
