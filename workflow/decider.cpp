// The decider: (definition, history) -> new events + commands.
//
// Record, then act: every command below is produced together with the
// event that records it, and the actor carries commands out only after
// those events are committed. Decisions read time only from `now_ms`, which
// they record in the events they emit, so replay never consults a clock.
#include "workflow/decider.hpp"

#include <cstdio>

#include "workflow/decider_internal.hpp"
#include "workflow/limits.hpp"

namespace cerebelum::workflow {

namespace ev = cerebelum::events;

namespace detail {

step_error expression_failure(const std::string& where, const diagnostic& d) {
  std::string msg = where + ": " + d.message;
  if (d.column > 0) msg += " (column " + std::to_string(d.column) + ")";
  return {"expression_error", std::move(msg), nullptr, false};
}

decision_maker::decision_maker(execution_state& state, std::int64_t now_ms,
                               const reoffer_policy& reoffers, decision& out)
  : s_(state), def_(state.def()), now_(now_ms), reoffers_(reoffers),
    out_(out) {}

void decision_maker::emit(ev::Event e) {
  e.set_seq(s_.next_seq());
  e.set_recorded_at_ms(now_);
  (void)s_.apply(e); // a fault is reported by the caller's loop
  bytes_ += e.ByteSizeLong();
  out_.events.push_back(std::move(e));
}

bool decision_maker::over_budget() const {
  return out_.events.size() > limits::max_decision_events
         || bytes_ > limits::max_decision_bytes;
}

void decision_maker::fail_over_budget() {
  if (s_.terminal() || s_.fault()) return;
  fail_execution(
    {"decision_too_large",
     "one decision recorded " + std::to_string(out_.events.size())
       + " events of " + std::to_string(bytes_)
       + " bytes without waiting for anything (limits max_decision_events "
       + std::to_string(limits::max_decision_events) + ", max_decision_bytes "
       + std::to_string(limits::max_decision_bytes)
       + "): a loop of set, log or fail steps that does not end, or a map "
         "over too many items",
     nullptr, false});
}

eval_scope decision_maker::scope(const json* item, const json* index,
                                 const json* error) const {
  eval_scope sc;
  sc.input = &s_.input();
  sc.steps = &s_.results();
  sc.item = item;
  sc.index = index;
  sc.error = error;
  sc.now_ms = now_;
  return sc;
}

bool decision_maker::step_once() {
  if (s_.terminal() || s_.fault()) return false;
  if (s_.cancel_pending()) {
    cancel_execution();
    return false;
  }
  auto st = s_.stage();
  if (st >= static_cast<int>(def_.stages.size())) {
    complete_execution();
    return false;
  }
  if (s_.branch_pending()) {
    take_branch();
    return true;
  }
  for (auto idx : def_.stages[static_cast<std::size_t>(st)].steps) {
    const auto& rt = s_.runtime(idx);
    if (act_on_slot(idx, -1, rt.self)) return true;
    if (def_.steps[idx].kind == step_kind::map
        && rt.self.phase == slot_phase::scheduled && advance_map(idx))
      return true;
  }
  return false;
}

bool decision_maker::act_on_slot(std::size_t idx, std::int32_t map_index,
                                 const slot& sl) {
  const auto& sp = def_.steps[idx];
  switch (sl.phase) {
    case slot_phase::idle:
      if (map_index >= 0) return false; // map children: see advance_map
      start_slot(idx, map_index, 1);
      return true;
    case slot_phase::retry_ready:
    case slot_phase::resume_ready:
      start_slot(idx, map_index, sl.attempt + 1);
      return true;
    case slot_phase::suspending: arm_suspension(idx, sl); return true;
    case slot_phase::resolve_ok:
      emit_completed(sp.name, map_index, sl.attempt, sl.token,
                     sl.pending_result);
      return true;
    case slot_phase::resolve_fail: {
      auto error = sl.error; // the slot changes under emit()
      if (sl.record_timeout) {
        ev::Event e;
        auto* t = e.mutable_approval_timed_out();
        t->set_step(sp.name);
        t->set_timed_out_at_ms(now_);
        emit(std::move(e));
      }
      const auto& cur
        = map_index < 0
            ? s_.runtime(idx).self
            : s_.runtime(idx).children[static_cast<std::size_t>(map_index)];
      emit_failed(sp.name, map_index, cur.attempt, cur.token, error);
      return true;
    }
    case slot_phase::failed: {
      auto copy = sl;
      apply_diverge(idx, map_index, copy);
      return true;
    }
    case slot_phase::failed_final: {
      auto error = sl.error;
      fail_execution(error);
      return true;
    }
    default: return false;
  }
}

bool decision_maker::advance_map(std::size_t idx) {
  const auto& sp = def_.steps[idx];
  const auto& rt = s_.runtime(idx);
  std::uint32_t busy = 0;
  bool all_done = true;
  for (std::size_t i = 0; i < rt.children.size(); ++i) {
    const auto& c = rt.children[i];
    if (act_on_slot(idx, static_cast<std::int32_t>(i), c)) return true;
    if (c.phase != slot_phase::done) all_done = false;
    if (c.phase != slot_phase::done && c.phase != slot_phase::idle) ++busy;
  }
  if (all_done) {
    json results = json::array();
    for (const auto& r : rt.child_results)
      results.push_back(r);
    // Each child's result fits in its event; all of them together may not.
    auto text_bytes = json_text(results).size();
    if (text_bytes > limits::max_value_bytes) {
      emit_failed(sp.name, -1, rt.self.attempt, rt.self.token,
                  step_error{"payload_too_large",
                             "the combined results of map step '" + sp.name
                               + "' are " + std::to_string(text_bytes)
                               + " bytes of JSON, more than the limit of "
                               + std::to_string(limits::max_value_bytes)
                               + " (limit max_value_bytes)",
                             nullptr, false});
      return true;
    }
    emit_completed(sp.name, -1, rt.self.attempt, rt.self.token, results);
    return true;
  }
  if (sp.concurrency != 0 && busy >= sp.concurrency) return false;
  for (std::size_t i = 0; i < rt.children.size(); ++i) {
    if (rt.children[i].phase == slot_phase::idle) {
      start_slot(idx, static_cast<std::int32_t>(i), 1);
      return true;
    }
  }
  return false;
}

namespace {

/// Index of the first diverge rule matching `error`, or -1.
int match_rule(const step& sp, const step_error& error, const json& err_json,
               const eval_scope& sc) {
  for (std::size_t i = 0; i < sp.diverge.size(); ++i) {
    const auto& r = sp.diverge[i];
    if (!r.kind.empty() && r.kind != "*" && r.kind != error.kind) continue;
    if (!r.message_contains.empty()
        && error.message.find(r.message_contains) == std::string::npos)
      continue;
    if (r.condition) {
      auto scope = sc;
      scope.error = &err_json;
      auto v = r.condition->eval(scope);
      // A condition that cannot be evaluated does not match.
      if (!v || !v->is_boolean() || !v->get<bool>()) continue;
    }
    return static_cast<int>(i);
  }
  return -1;
}

/// What a failure leads to: the rule, the action and its parameters.
struct diverge_choice {
  int rule_index = -1;
  diverge_action action = diverge_action::fail;
  std::string target;
  std::int64_t delay_ms = 0;
};

diverge_choice choose(const step& sp, const execution_state::slot& sl,
                      const eval_scope& sc) {
  diverge_choice c;
  c.rule_index = match_rule(sp, sl.error, sl.error.to_json(), sc);
  std::optional<retry_policy> policy;
  if (c.rule_index >= 0) {
    const auto& r = sp.diverge[static_cast<std::size_t>(c.rule_index)];
    c.action = r.action;
    c.target = r.target;
    policy = r.retry ? r.retry : sp.retry;
  } else if (sp.retry && sl.error.retryable) {
    c.action = diverge_action::retry;
    policy = sp.retry;
  }
  if (c.action == diverge_action::retry) {
    auto p = policy.value_or(retry_policy{});
    // The budget counts failures, not attempts: an attempt that suspended
    // itself and its continuation are one try.
    if (sl.failures >= p.max_attempts)
      c.action = diverge_action::fail;
    else
      c.delay_ms = p.delay_ms(sl.failures, sl.token);
  }
  return c;
}

} // namespace

bool decision_maker::reoffer(const step& sp, std::int32_t map_index,
                             const slot& sl) {
  if (!sl.lost || sl.reoffers >= reoffers_.max_reoffers) return false;
  auto delay = reoffers_.delay_ms(sl.reoffers + 1);
  ev::Event e;
  auto* d = e.mutable_diverge_taken();
  d->set_step(sp.name);
  d->set_rule_index(-1);
  d->set_action("reoffer");
  d->set_retry_delay_ms(delay);
  d->set_attempt_token(sl.token);
  d->set_map_index(map_index);
  emit(std::move(e));
  if (delay > 0)
    start_timer("retry:" + sl.token, "retry_backoff", sp.name, delay);
  return true;
}

void decision_maker::apply_diverge(std::size_t idx, std::int32_t map_index,
                                   const slot& sl) {
  const auto& sp = def_.steps[idx];
  if (reoffer(sp, map_index, sl)) return;
  const auto& rt = s_.runtime(idx);
  json index = map_index;
  const json* item = map_index >= 0 && rt.items.is_array()
                       ? &rt.items[static_cast<std::size_t>(map_index)]
                       : nullptr;
  auto [rule_index, action, target, delay]
    = choose(sp, sl, scope(item, map_index >= 0 ? &index : nullptr));
  ev::Event e;
  auto* d = e.mutable_diverge_taken();
  d->set_step(sp.name);
  d->set_rule_index(rule_index);
  d->set_action(to_string(action));
  d->set_target(target);
  d->set_retry_delay_ms(delay);
  d->set_attempt_token(sl.token);
  d->set_map_index(map_index);
  auto current = s_.stage();
  emit(std::move(e));
  switch (action) {
    case diverge_action::retry:
      if (delay > 0)
        start_timer("retry:" + sl.token, "retry_backoff", sp.name, delay);
      break;
    case diverge_action::go_to:
      record_jump(sp.name, def_.stage_index(target), current);
      break;
    case diverge_action::fail: {
      auto error = sl.error;
      error.message
        = "step '" + sp.name + "' failed"
          + (sl.failures > 1
               ? " after " + std::to_string(sl.failures) + " attempts"
               : std::string{})
          + (sl.reoffers > 0 ? " (" + std::to_string(sl.reoffers)
                                 + " lost attempts offered again)"
                             : std::string{})
          + ": " + error.message;
      fail_execution(error);
      break;
    }
    case diverge_action::continue_: break;
  }
}

bool decision_maker::record_jump(const std::string& from, int target,
                                 int current) {
  if (target < 0 || target > current) return true;
  auto iteration = s_.iterations() + 1;
  if (iteration > def_.max_iterations) {
    fail_execution({"max_iterations_exceeded",
                    "jumping back from '" + from + "' to '"
                      + def_.stages[static_cast<std::size_t>(target)].name
                      + "' would exceed max_iterations ("
                      + std::to_string(def_.max_iterations) + ")",
                    nullptr, false});
    return false;
  }
  ev::Event e;
  auto* j = e.mutable_jumped_back();
  j->set_from_step(from);
  j->set_to_step(def_.stages[static_cast<std::size_t>(target)].name);
  j->set_iteration(iteration);
  emit(std::move(e));
  return true;
}

void decision_maker::take_branch() {
  auto current = s_.stage();
  const auto& st = def_.stages[static_cast<std::size_t>(current)];
  int chosen = -1;
  std::string target;
  for (std::size_t i = 0; i < st.branch.size() && chosen < 0; ++i) {
    const auto& b = st.branch[i];
    bool take = true;
    if (b.condition) {
      auto v = b.condition->eval(scope());
      if (!v) {
        fail_execution(expression_failure(
          "branch condition " + std::to_string(i) + " of '" + st.name + "'",
          v.error()));
        return;
      }
      if (!v->is_boolean()) {
        fail_execution({"expression_error",
                        "branch condition " + std::to_string(i) + " of '"
                          + st.name + "' is a " + v->type_name()
                          + ", not a boolean",
                        nullptr, false});
        return;
      }
      take = v->get<bool>();
    }
    if (take) {
      chosen = static_cast<int>(i);
      target = b.target;
    }
  }
  if (chosen < 0) {
    auto next = static_cast<std::size_t>(current) + 1;
    target = next < def_.stages.size() ? def_.stages[next].name
                                       : std::string{end_target};
  }
  ev::Event e;
  auto* b = e.mutable_branch_taken();
  b->set_step(st.name);
  b->set_condition_index(chosen);
  b->set_target(target);
  emit(std::move(e));
  if (target != end_target)
    record_jump(st.name, def_.stage_index(target), current);
}

void decision_maker::complete_execution() {
  auto value = def_.output.eval(scope(), s_.results());
  if (!value) {
    fail_execution(expression_failure("output", value.error()));
    return;
  }
  ev::Event e;
  auto* c = e.mutable_execution_completed();
  c->set_result_json(json_text(*value));
  c->set_completed_at_ms(now_);
  emit(std::move(e));
  out_.commands.emplace_back(
    finish_command{execution_status::completed, *value, std::nullopt, {}});
}

void decision_maker::fail_execution(const step_error& error) {
  auto abandoned = s_.outstanding();
  ev::Event e;
  auto* f = e.mutable_execution_failed();
  error.to_proto(*f->mutable_error());
  f->set_failed_at_ms(now_);
  emit(std::move(e));
  out_.commands.emplace_back(finish_command{execution_status::failed, nullptr,
                                            error, std::move(abandoned)});
}

void decision_maker::cancel_execution() {
  auto abandoned = s_.outstanding();
  ev::Event e;
  auto* c = e.mutable_execution_cancelled();
  c->set_by(s_.cancel_by());
  c->set_by_note(s_.cancel_by_note());
  c->set_reason(s_.cancel_reason());
  c->set_cancelled_at_ms(now_);
  emit(std::move(e));
  out_.commands.emplace_back(finish_command{
    execution_status::cancelled, nullptr, std::nullopt, std::move(abandoned)});
}

} // namespace detail

std::int64_t reoffer_policy::delay_ms(std::uint32_t n) const {
  // The first re-offer goes at once: another worker may well be waiting.
  if (n <= 1) return 0;
  auto d = first_delay_ms;
  for (std::uint32_t i = 2; i < n && d < max_delay_ms; ++i)
    d *= 2;
  return std::min(d, max_delay_ms);
}

result<decision> decide(execution_state& state, std::int64_t now_ms,
                        const reoffer_policy& reoffers) {
  if (state.fault()) return *state.fault();
  if (!state.started())
    return diagnostic{
      {}, 0, 0, {}, "history must begin with execution_started"};
  decision out;
  detail::decision_maker maker{state, now_ms, reoffers, out};
  // Every action records at least one event; the bound only guards
  // against a bug looping forever.
  for (std::size_t guard = 0; maker.step_once(); ++guard) {
    if (guard > 10'000'000)
      return diagnostic{{}, 0, 0, {}, "decider made no progress"};
    // What one decision records goes into one append: bounded, so that a
    // definition cannot grow it without end (and the store never refuses
    // it, which would be retried forever).
    if (maker.over_budget()) {
      maker.fail_over_budget();
      break;
    }
  }
  if (state.fault()) return *state.fault();
  return out;
}

result<decision> decide(const definition& def,
                        const std::vector<ev::Event>& history,
                        const decide_options& options) {
  execution_state state{def, options.execution_id};
  for (const auto& e : history)
    if (auto st = state.apply(e); !st) return st.error();
  return decide(state, options.now_ms, options.reoffers);
}

ev::Event make_started_event(const definition& def, const json& input,
                             std::int64_t now_ms, std::string started_by,
                             std::string started_by_note) {
  ev::Event e;
  e.set_seq(0);
  e.set_recorded_at_ms(now_ms);
  auto* s = e.mutable_execution_started();
  s->set_workflow(def.name);
  s->set_workflow_version(def.version_hash);
  s->set_input_json(json_text(input));
  s->set_started_at_ms(now_ms);
  s->set_started_by(std::move(started_by));
  s->set_started_by_note(std::move(started_by_note));
  return e;
}

std::string attempt_token(const std::string& execution_id,
                          const std::string& step, std::uint32_t visit,
                          std::uint32_t attempt, std::int32_t map_index) {
  std::string readable = step;
  if (map_index >= 0) readable += "[" + std::to_string(map_index) + "]";
  readable += "/v" + std::to_string(visit) + "/a" + std::to_string(attempt);
  auto h = fnv1a64(execution_id + '\0' + readable);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return readable + "/" + hex;
}

} // namespace cerebelum::workflow

namespace cerebelum::workflow {

std::vector<command> resume_commands(const execution_state& s) {
  std::vector<command> out;
  if (s.terminal()) return out;
  for (const auto& a : s.outstanding()) {
    if (a.kind != step_kind::call && a.kind != step_kind::task) continue;
    auto idx = static_cast<std::size_t>(s.def().step_index(a.step));
    const auto& rt = s.runtime(idx);
    const auto& sl = a.map_index < 0
                       ? rt.self
                       : rt.children[static_cast<std::size_t>(a.map_index)];
    const auto& sched = sl.scheduled;
    auto resume = parse_json_text(sched.resume_json());
    out.emplace_back(run_step_command{
      a.step, a.map_index, a.attempt, a.token, a.kind, sched.target(),
      sched.task_queue(), parse_json_text(sched.input_json()),
      sched.idempotency_key(), sched.start_to_close_timeout_ms(),
      sched.heartbeat_timeout_ms(),
      resume.is_object() ? std::move(resume) : json::object()});
  }
  for (const auto& t : s.timers())
    out.emplace_back(
      start_timer_command{t.id, t.purpose, t.step, t.fire_at_ms});
  for (const auto& ap : s.approvals())
    out.emplace_back(request_approval_command{ap.step, ap.data, ap.timeout_ms});
  return out;
}

} // namespace cerebelum::workflow
