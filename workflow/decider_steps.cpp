// The decider: starting an attempt of each kind of step.
#include "workflow/decider_internal.hpp"
#include "workflow/duration.hpp"
#include "workflow/limits.hpp"

#include <limits>

namespace cerebelum::workflow::detail {

namespace ev = cerebelum::events;

namespace {

/// Names the part `what` of step `sp` in an expression failure.
std::string of(const step& sp, const char* what) {
  return "step '" + sp.name + "' " + what;
}

/// `base + delay` without overflow (delays from workers may be huge).
std::int64_t saturating_add(std::int64_t base, std::int64_t delay) {
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  if (base > 0 && delay > max - base) return max;
  return base + delay;
}

} // namespace

void decision_maker::emit_scheduled(const ev::StepScheduled& sched) {
  ev::Event e;
  *e.mutable_step_scheduled() = sched;
  emit(std::move(e));
}

void decision_maker::emit_completed(const std::string& step,
                                    std::int32_t map_index,
                                    std::uint32_t attempt,
                                    const std::string& token,
                                    const json& result) {
  ev::Event e;
  auto* c = e.mutable_step_completed();
  c->set_step(step);
  c->set_attempt(attempt);
  c->set_attempt_token(token);
  c->set_result_json(json_text(result));
  c->set_completed_at_ms(now_);
  c->set_map_index(map_index);
  emit(std::move(e));
}

void decision_maker::emit_failed(const std::string& step,
                                 std::int32_t map_index, std::uint32_t attempt,
                                 const std::string& token,
                                 const step_error& error) {
  ev::Event e;
  auto* f = e.mutable_step_failed();
  f->set_step(step);
  f->set_attempt(attempt);
  f->set_attempt_token(token);
  error.to_proto(*f->mutable_error());
  f->set_failed_at_ms(now_);
  f->set_map_index(map_index);
  emit(std::move(e));
}

void decision_maker::start_timer(const std::string& id,
                                 const std::string& purpose,
                                 const std::string& step,
                                 std::int64_t delay_ms) {
  start_timer_at(id, purpose, step, saturating_add(now_, delay_ms));
}

void decision_maker::start_timer_at(const std::string& id,
                                    const std::string& purpose,
                                    const std::string& step,
                                    std::int64_t fire_at_ms) {
  ev::Event e;
  auto* t = e.mutable_timer_started();
  t->set_timer_id(id);
  t->set_purpose(purpose);
  t->set_step(step);
  t->set_fire_at_ms(fire_at_ms);
  emit(std::move(e));
  out_.commands.emplace_back(
    start_timer_command{id, purpose, step, fire_at_ms});
}

/// A task attempt suspended itself: arm its wait (a step_resume timer at
/// suspended_at + sleep_ms, or an approval with its timeout).
void decision_maker::arm_suspension(std::size_t idx, const slot& sl) {
  const auto& sp = def_.steps[idx];
  auto su = sl.suspension; // the slot changes under emit()
  auto token = sl.token;
  if (su.sleep_ms() > 0) {
    auto base = su.suspended_at_ms() > 0 ? su.suspended_at_ms() : now_;
    start_timer_at("resume:" + token, "step_resume", sp.name,
                   saturating_add(base, su.sleep_ms()));
    return;
  }
  auto data = parse_json_text(su.approval_data_json());
  ev::Event e;
  auto* r = e.mutable_approval_requested();
  r->set_step(sp.name);
  r->set_data_json(json_text(data));
  r->set_timeout_ms(su.approval_timeout_ms());
  r->set_requested_at_ms(now_);
  emit(std::move(e));
  out_.commands.emplace_back(
    request_approval_command{sp.name, data, su.approval_timeout_ms()});
  if (su.approval_timeout_ms() > 0)
    start_timer("approval:" + token, "approval_timeout", sp.name,
                su.approval_timeout_ms());
}

void decision_maker::start_slot(std::size_t idx, std::int32_t map_index,
                                std::uint32_t attempt) {
  const auto& sp = def_.steps[idx];
  const auto& rt = s_.runtime(idx);
  auto kind = map_index >= 0 ? sp.child_kind : sp.kind;
  ev::StepScheduled sched;
  sched.set_step(sp.name);
  sched.set_attempt(attempt);
  sched.set_attempt_token(
    attempt_token(s_.execution_id(), sp.name, rt.visit, attempt, map_index));
  sched.set_scheduled_at_ms(now_);
  sched.set_map_index(map_index);
  sched.set_kind(to_string(kind));
  if (map_index < 0 && sp.kind == step_kind::map) return start_map(sp, sched);
  if (kind == step_kind::call || kind == step_kind::task) {
    // Waits done by earlier attempts of this visit (step_suspended).
    const auto& sl = map_index < 0
                       ? rt.self
                       : rt.children[static_cast<std::size_t>(map_index)];
    if (sl.resume.is_object() && !sl.resume.empty())
      sched.set_resume_json(json_text(sl.resume));
    json index = map_index;
    const json* item = map_index >= 0 && rt.items.is_array()
                         ? &rt.items[static_cast<std::size_t>(map_index)]
                         : nullptr;
    return start_external(sp, std::move(sched),
                          scope(item, map_index >= 0 ? &index : nullptr));
  }
  switch (kind) {
    case step_kind::sleep: return start_sleep(sp, std::move(sched));
    case step_kind::approval: return start_approval(sp, std::move(sched));
    default: return start_local(sp, std::move(sched));
  }
}

void decision_maker::start_external(const step& sp, ev::StepScheduled sched,
                                    const eval_scope& sc) {
  auto fail_now = [&](const step_error& err) {
    emit_scheduled(sched);
    emit_failed(sp.name, sched.map_index(), sched.attempt(),
                sched.attempt_token(), err);
  };
  auto input = sp.input.eval(sc);
  if (!input)
    return fail_now(expression_failure(of(sp, "input"), input.error()));
  std::string key = s_.execution_id() + "/" + sp.name;
  if (sched.map_index() >= 0) key += "/" + std::to_string(sched.map_index());
  if (sp.idempotency_key) {
    auto k = sp.idempotency_key->render(sc, limits::max_idempotency_key_bytes,
                                        "max_idempotency_key_bytes");
    if (!k)
      return fail_now(expression_failure(of(sp, "idempotency_key"), k.error()));
    key = std::move(*k);
  }
  auto kind = sched.map_index() >= 0 ? sp.child_kind : sp.kind;
  sched.set_input_json(json_text(*input));
  sched.set_target(sp.target);
  sched.set_task_queue(kind == step_kind::task ? sp.task_queue : "");
  sched.set_idempotency_key(key);
  sched.set_start_to_close_timeout_ms(sp.start_to_close_timeout_ms);
  sched.set_heartbeat_timeout_ms(sp.heartbeat_timeout_ms);
  emit_scheduled(sched);
  auto resume = sched.resume_json().empty()
                  ? json::object()
                  : parse_json_text(sched.resume_json());
  out_.commands.emplace_back(run_step_command{
    sp.name, sched.map_index(), sched.attempt(), sched.attempt_token(), kind,
    sp.target, sched.task_queue(), std::move(*input), key,
    sp.start_to_close_timeout_ms, sp.heartbeat_timeout_ms, std::move(resume)});
  if (sp.start_to_close_timeout_ms > 0)
    start_timer(timeout_timer_id(sched.attempt_token()), "step_timeout", sp.name,
                sp.start_to_close_timeout_ms);
}

void decision_maker::start_map(const step& sp, ev::StepScheduled sched) {
  auto items = sp.map_over->eval(scope());
  if (!items || !items->is_array()) {
    auto err = items ? step_error{"expression_error",
                                  std::string{"map over: expected a list, got "}
                                    + items->type_name(),
                                  nullptr, false}
                     : expression_failure(of(sp, "map over"), items.error());
    emit_scheduled(sched);
    emit_failed(sp.name, -1, sched.attempt(), sched.attempt_token(), err);
    return;
  }
  if (auto why = limits::check_value(*items)) {
    emit_scheduled(sched);
    emit_failed(sp.name, -1, sched.attempt(), sched.attempt_token(),
                step_error{"expression_error", of(sp, "map over") + ": " + *why,
                           nullptr, false});
    return;
  }
  // The list is recorded so replay never evaluates `over` again.
  sched.set_input_json(json_text(*items));
  sched.set_target(sp.target);
  emit_scheduled(sched);
}

void decision_maker::start_sleep(const step& sp, ev::StepScheduled sched) {
  std::int64_t ms = sp.sleep_ms;
  if (sp.sleep_expr) {
    auto v = sp.sleep_expr->eval(scope());
    std::optional<step_error> err;
    if (!v) {
      err = expression_failure(of(sp, "sleep"), v.error());
    } else if (v->is_number_integer() && v->get<std::int64_t>() >= 0) {
      ms = v->get<std::int64_t>();
    } else if (v->is_string()) {
      auto d = parse_duration(v->get<std::string>());
      if (d)
        ms = *d;
      else
        err = step_error{"expression_error", d.error().message, nullptr, false};
    } else {
      err = step_error{"expression_error",
                       "sleep: expected milliseconds or a duration, got "
                         + v->dump(-1, ' ', false,
                                   json::error_handler_t::replace),
                       nullptr, false};
    }
    if (err) {
      emit_scheduled(sched);
      emit_failed(sp.name, -1, sched.attempt(), sched.attempt_token(), *err);
      return;
    }
  }
  sched.set_input_json(json_text(json{{"duration_ms", ms}}));
  emit_scheduled(sched);
  start_timer("sleep:" + sched.attempt_token(), "sleep", sp.name, ms);
}

void decision_maker::start_approval(const step& sp, ev::StepScheduled sched) {
  auto data = sp.input.eval(scope());
  if (!data) {
    emit_scheduled(sched);
    emit_failed(sp.name, -1, sched.attempt(), sched.attempt_token(),
                expression_failure(of(sp, "approval data"), data.error()));
    return;
  }
  sched.set_input_json(json_text(*data));
  emit_scheduled(sched);
  ev::Event e;
  auto* r = e.mutable_approval_requested();
  r->set_step(sp.name);
  r->set_data_json(json_text(*data));
  r->set_timeout_ms(sp.approval_timeout_ms);
  r->set_requested_at_ms(now_);
  emit(std::move(e));
  out_.commands.emplace_back(
    request_approval_command{sp.name, *data, sp.approval_timeout_ms});
  if (sp.approval_timeout_ms > 0)
    start_timer("approval:" + sched.attempt_token(), "approval_timeout",
                sp.name, sp.approval_timeout_ms);
}

/// set, log and fail: resolved here, recorded as step_completed/step_failed.
void decision_maker::start_local(const step& sp, ev::StepScheduled sched) {
  auto sc = scope();
  emit_scheduled(sched);
  auto done = [&](const json& v) {
    emit_completed(sp.name, -1, sched.attempt(), sched.attempt_token(), v);
  };
  auto failed = [&](const step_error& e) {
    emit_failed(sp.name, -1, sched.attempt(), sched.attempt_token(), e);
  };
  if (sp.kind == step_kind::set) {
    auto v = sp.input.eval(sc, json::object());
    return v ? done(*v) : failed(expression_failure(of(sp, "set"), v.error()));
  }
  std::string message;
  if (sp.message) {
    auto m = sp.message->render(sc);
    if (!m) return failed(expression_failure(of(sp, "message"), m.error()));
    message = std::move(*m);
  }
  if (sp.kind == step_kind::fail)
    return failed(step_error{sp.fail_kind, message, nullptr, false});
  ev::Event e;
  auto* a = e.mutable_annotated();
  a->set_step(sp.name);
  a->set_level(sp.level);
  a->set_message(message);
  a->set_at_ms(now_);
  emit(std::move(e));
  done(nullptr);
}

} // namespace cerebelum::workflow::detail
