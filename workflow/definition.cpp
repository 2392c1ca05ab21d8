#include "workflow/definition.hpp"

#include <cmath>

#include "workflow/limits.hpp"
#include "workflow/validator.hpp"

namespace cerebelum::workflow {

const char* to_string(step_kind kind) {
  switch (kind) {
    case step_kind::task: return "task";
    case step_kind::call: return "call";
    case step_kind::set: return "set";
    case step_kind::sleep: return "sleep";
    case step_kind::approval: return "approval";
    case step_kind::log: return "log";
    case step_kind::fail: return "fail";
    case step_kind::map: return "map";
  }
  return "?";
}

const char* to_string(diverge_action action) {
  switch (action) {
    case diverge_action::retry: return "retry";
    case diverge_action::go_to: return "goto";
    case diverge_action::fail: return "fail";
    case diverge_action::continue_: return "continue";
  }
  return "?";
}

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::int64_t retry_policy::delay_ms(std::uint32_t failed_attempt,
                                    std::string_view token) const {
  double delay = static_cast<double>(initial_interval_ms);
  for (std::uint32_t i = 1; i < failed_attempt; ++i) {
    delay *= backoff_coefficient;
    if (max_interval_ms > 0 && delay >= static_cast<double>(max_interval_ms))
      break;
    if (delay > 1e15) break;
  }
  if (max_interval_ms > 0 && delay > static_cast<double>(max_interval_ms))
    delay = static_cast<double>(max_interval_ms);
  if (delay > 1e15) delay = 1e15;
  if (jitter) {
    // Deterministic jitter: a factor in [0.5, 1] from the token's hash.
    auto h = fnv1a64(token) % 1001;
    delay *= 0.5 + static_cast<double>(h) / 2000.0;
  }
  return static_cast<std::int64_t>(std::llround(delay));
}

namespace {

/// The value a template yields, or why it is over the value limits: it is
/// recorded in one event, which must stay under the store's payload limit.
result<json> within_limits(json v) {
  if (auto why = limits::check_value(v)) return diagnostic{{}, 0, 0, {}, *why};
  return v;
}

} // namespace

result<json> value_template::eval(const eval_scope& scope,
                                  const json& empty_value) const {
  if (whole) {
    auto v = whole->eval(scope);
    if (!v) return v;
    return within_limits(std::move(*v));
  }
  if (fields.empty()) return within_limits(empty_value);
  json out = json::object();
  for (const auto& [key, expr] : fields) {
    auto v = expr.eval(scope);
    if (!v) {
      auto d = v.error();
      d.message = "in '" + key + "': " + d.message;
      return d;
    }
    out[key] = std::move(*v);
  }
  return within_limits(std::move(out));
}

std::vector<std::string> value_template::step_refs() const {
  std::vector<std::string> out;
  if (whole) out = whole->step_refs();
  for (const auto& f : fields)
    for (const auto& r : f.second.step_refs())
      out.push_back(r);
  return out;
}

int definition::step_index(std::string_view name) const {
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (steps[i].name == name) return static_cast<int>(i);
  return -1;
}

int definition::stage_index(std::string_view name) const {
  for (std::size_t i = 0; i < stages.size(); ++i)
    if (stages[i].name == name) return static_cast<int>(i);
  return -1;
}

int definition::stage_of(std::size_t step_idx) const {
  for (std::size_t i = 0; i < stages.size(); ++i)
    for (auto s : stages[i].steps)
      if (s == step_idx) return static_cast<int>(i);
  return -1;
}

namespace {

json canonical(const retry_policy& p) {
  return {{"max_attempts", p.max_attempts},
          {"initial_interval_ms", p.initial_interval_ms},
          {"backoff_coefficient", p.backoff_coefficient},
          {"max_interval_ms", p.max_interval_ms},
          {"jitter", p.jitter}};
}

json canonical(const value_template& v) {
  if (v.whole) return {{"expr", v.whole->canonical()}};
  json fields = json::object();
  for (const auto& [k, e] : v.fields)
    fields[k] = e.canonical();
  return {{"fields", fields}};
}

json canonical(const diverge_rule& r) {
  json out = {{"kind", r.kind},
              {"message_contains", r.message_contains},
              {"action", to_string(r.action)},
              {"target", r.target}};
  if (r.condition) out["if"] = r.condition->canonical();
  if (r.retry) out["retry"] = canonical(*r.retry);
  return out;
}

json canonical(const step& s) {
  json out = {{"name", s.name},
              {"kind", to_string(s.kind)},
              {"target", s.target},
              {"child_kind", to_string(s.child_kind)},
              {"task_queue", s.task_queue},
              {"input", canonical(s.input)},
              {"sleep_ms", s.sleep_ms},
              {"approval_timeout_ms", s.approval_timeout_ms},
              {"level", s.level},
              {"fail_kind", s.fail_kind},
              {"concurrency", s.concurrency},
              {"start_to_close_timeout_ms", s.start_to_close_timeout_ms},
              {"heartbeat_timeout_ms", s.heartbeat_timeout_ms}};
  if (s.sleep_expr) out["sleep_expr"] = s.sleep_expr->canonical();
  if (s.message) out["message"] = s.message->canonical();
  if (s.map_over) out["map_over"] = s.map_over->canonical();
  if (s.retry) out["retry"] = canonical(*s.retry);
  if (s.idempotency_key)
    out["idempotency_key"] = s.idempotency_key->canonical();
  json rules = json::array();
  for (const auto& r : s.diverge)
    rules.push_back(canonical(r));
  out["diverge"] = rules;
  return out;
}

} // namespace

json canonical_form(const definition& def) {
  json steps = json::array();
  for (const auto& s : def.steps)
    steps.push_back(canonical(s));
  json stages = json::array();
  for (const auto& st : def.stages) {
    json branch = json::array();
    for (const auto& b : st.branch)
      branch.push_back(
        {{"if", b.condition ? b.condition->canonical() : std::string{}},
         {"target", b.target}});
    stages.push_back({{"name", st.name},
                      {"steps", st.steps},
                      {"parallel", st.parallel},
                      {"branch", branch}});
  }
  return {{"name", def.name},
          {"version", def.version},
          {"input_schema", def.input_schema},
          {"max_iterations", def.max_iterations},
          {"steps", steps},
          {"stages", stages},
          {"output", canonical(def.output)}};
}

std::uint64_t compute_version_hash(const definition& def) {
  return fnv1a64(
    canonical_form(def).dump(-1, ' ', false, json::error_handler_t::replace));
}

result<definition> finalize(definition def) {
  auto problems = validate(def);
  if (!problems.empty()) return problems.front();
  def.version_hash = compute_version_hash(def);
  return def;
}

} // namespace cerebelum::workflow
