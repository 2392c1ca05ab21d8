#include "workflow/stored_definition.hpp"

#include <stdexcept>

namespace cerebelum::workflow {

std::string to_stored_document(const definition& def) {
  return canonical_form(def).dump(-1, ' ', false,
                                  json::error_handler_t::replace);
}

namespace {

/// A document that is not a canonical form; caught below (never escapes).
struct bad_document : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const json& field(const json& obj, const char* key) {
  if (!obj.is_object()) throw bad_document{"expected an object"};
  auto i = obj.find(key);
  if (i == obj.end()) throw bad_document{std::string{"no '"} + key + "'"};
  return *i;
}

std::string text(const json& obj, const char* key) {
  const auto& v = field(obj, key);
  if (!v.is_string())
    throw bad_document{std::string{"'"} + key + "' is not a string"};
  return v.get<std::string>();
}

expression expr(const std::string& source, const char* what) {
  auto e = expression::parse(source);
  if (!e) throw bad_document{std::string{what} + ": " + e.error().to_string()};
  return std::move(*e);
}

std::optional<expression> opt_expr(const json& obj, const char* key) {
  auto i = obj.find(key);
  if (i == obj.end()) return std::nullopt;
  if (!i->is_string())
    throw bad_document{std::string{"'"} + key + "' is not a string"};
  return expr(i->get<std::string>(), key);
}

std::optional<text_template> opt_text_template(const json& obj,
                                               const char* key) {
  auto i = obj.find(key);
  if (i == obj.end()) return std::nullopt;
  if (!i->is_string())
    throw bad_document{std::string{"'"} + key + "' is not a string"};
  auto t = text_template::parse(i->get<std::string>());
  if (!t) throw bad_document{std::string{key} + ": " + t.error().to_string()};
  return std::move(*t);
}

step_kind kind_of(const std::string& name) {
  for (auto k :
       {step_kind::task, step_kind::call, step_kind::set, step_kind::sleep,
        step_kind::approval, step_kind::log, step_kind::fail, step_kind::map})
    if (name == to_string(k)) return k;
  throw bad_document{"unknown step kind '" + name + "'"};
}

diverge_action action_of(const std::string& name) {
  for (auto a : {diverge_action::retry, diverge_action::go_to,
                 diverge_action::fail, diverge_action::continue_})
    if (name == to_string(a)) return a;
  throw bad_document{"unknown diverge action '" + name + "'"};
}

retry_policy policy(const json& j) {
  retry_policy p;
  p.max_attempts = field(j, "max_attempts").get<std::uint32_t>();
  p.initial_interval_ms = field(j, "initial_interval_ms").get<std::int64_t>();
  p.backoff_coefficient = field(j, "backoff_coefficient").get<double>();
  p.max_interval_ms = field(j, "max_interval_ms").get<std::int64_t>();
  p.jitter = field(j, "jitter").get<bool>();
  return p;
}

std::optional<retry_policy> opt_policy(const json& obj, const char* key) {
  auto i = obj.find(key);
  if (i == obj.end()) return std::nullopt;
  return policy(*i);
}

value_template values(const json& j) {
  value_template v;
  if (auto i = j.find("expr"); i != j.end()) {
    v.whole = expr(i->get<std::string>(), "an input expression");
    return v;
  }
  for (const auto& [key, source] : field(j, "fields").items())
    v.fields.emplace_back(key, expr(source.get<std::string>(), "a field"));
  return v;
}

diverge_rule rule(const json& j) {
  diverge_rule r;
  r.kind = text(j, "kind");
  r.message_contains = text(j, "message_contains");
  r.action = action_of(text(j, "action"));
  r.target = text(j, "target");
  r.condition = opt_expr(j, "if");
  r.retry = opt_policy(j, "retry");
  return r;
}

step one_step(const json& j) {
  step s;
  s.name = text(j, "name");
  s.kind = kind_of(text(j, "kind"));
  s.target = text(j, "target");
  s.child_kind = kind_of(text(j, "child_kind"));
  s.task_queue = text(j, "task_queue");
  s.input = values(field(j, "input"));
  s.sleep_ms = field(j, "sleep_ms").get<std::int64_t>();
  s.sleep_expr = opt_expr(j, "sleep_expr");
  s.approval_timeout_ms = field(j, "approval_timeout_ms").get<std::int64_t>();
  s.message = opt_text_template(j, "message");
  s.level = text(j, "level");
  s.fail_kind = text(j, "fail_kind");
  s.map_over = opt_expr(j, "map_over");
  s.concurrency = field(j, "concurrency").get<std::uint32_t>();
  s.retry = opt_policy(j, "retry");
  s.start_to_close_timeout_ms
    = field(j, "start_to_close_timeout_ms").get<std::int64_t>();
  s.heartbeat_timeout_ms = field(j, "heartbeat_timeout_ms").get<std::int64_t>();
  s.idempotency_key = opt_text_template(j, "idempotency_key");
  for (const auto& r : field(j, "diverge"))
    s.diverge.push_back(rule(r));
  return s;
}

stage one_stage(const json& j) {
  stage st;
  st.name = text(j, "name");
  st.steps = field(j, "steps").get<std::vector<std::size_t>>();
  st.parallel = field(j, "parallel").get<bool>();
  for (const auto& b : field(j, "branch")) {
    branch_rule r;
    auto cond = text(b, "if");
    if (!cond.empty()) r.condition = expr(cond, "a branch condition");
    r.target = text(b, "target");
    st.branch.push_back(std::move(r));
  }
  return st;
}

definition rebuild(const json& doc) {
  definition def;
  def.name = text(doc, "name");
  def.version = text(doc, "version");
  def.input_schema = field(doc, "input_schema");
  def.max_iterations = field(doc, "max_iterations").get<std::uint32_t>();
  for (const auto& s : field(doc, "steps"))
    def.steps.push_back(one_step(s));
  for (const auto& st : field(doc, "stages"))
    def.stages.push_back(one_stage(st));
  def.output = values(field(doc, "output"));
  return def;
}

} // namespace

result<definition> from_stored_document(std::string_view document,
                                        std::uint64_t version,
                                        std::string file) {
  auto bad = [&](const std::string& why) -> result<definition> {
    return diagnostic{file,
                      0,
                      0,
                      {},
                      "stored definition (version " + std::to_string(version)
                        + ") is damaged: " + why};
  };
  definition def;
  try {
    auto doc = json::parse(document);
    def = rebuild(doc);
  } catch (const bad_document& e) {
    return bad(e.what());
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  def.file = file;
  auto done = finalize(std::move(def));
  if (!done) return bad(done.error().message);
  if (done->version_hash != version)
    return bad("its document hashes to version "
               + std::to_string(done->version_hash));
  return done;
}

} // namespace cerebelum::workflow
