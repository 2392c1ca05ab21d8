#include "workflow/builder.hpp"

#include "workflow/duration.hpp"

namespace cerebelum::workflow {

namespace {

/// Parses an expression or returns the diagnostic with a message naming
/// where it was used.
result<expression> parse_expr(std::string_view what, std::string_view src) {
  auto e = expression::parse(src);
  if (e) return e;
  auto d = e.error();
  d.message = "expression syntax error in " + std::string{what} + " at column "
              + std::to_string(d.column) + ": " + d.message;
  return d;
}

} // namespace

step_builder::step_builder(std::string name, step_kind kind) {
  step_.name = std::move(name);
  step_.kind = kind;
}

void step_builder::note(const std::string& what, const diagnostic& d) {
  if (error_) return;
  error_ = d;
  error_->step = step_.name;
  if (error_->message.find(what) == std::string::npos)
    error_->message = what + ": " + error_->message;
}

std::int64_t step_builder::parse_ms(std::string_view what,
                                    std::string_view text) {
  auto d = parse_duration(text);
  if (d) return *d;
  note(std::string{what}, d.error());
  return 0;
}

step_builder step_builder::call(std::string name, std::string function) {
  step_builder b{std::move(name), step_kind::call};
  b.step_.target = std::move(function);
  return b;
}

step_builder step_builder::task(std::string name, std::string task_type,
                                std::string queue) {
  step_builder b{std::move(name), step_kind::task};
  b.step_.target = std::move(task_type);
  b.step_.task_queue = std::move(queue);
  return b;
}

step_builder step_builder::set(std::string name) {
  return step_builder{std::move(name), step_kind::set};
}

step_builder step_builder::sleep(std::string name, std::string_view duration) {
  step_builder b{std::move(name), step_kind::sleep};
  b.step_.sleep_ms = b.parse_ms("sleep", duration);
  return b;
}

step_builder step_builder::sleep_expr(std::string name, std::string_view expr) {
  step_builder b{std::move(name), step_kind::sleep};
  auto e = parse_expr("sleep expression", expr);
  if (e)
    b.step_.sleep_expr = std::move(*e);
  else
    b.note("sleep expression", e.error());
  return b;
}

step_builder step_builder::approval(std::string name) {
  return step_builder{std::move(name), step_kind::approval};
}

step_builder step_builder::log(std::string name, std::string_view message,
                               std::string level) {
  step_builder b{std::move(name), step_kind::log};
  b.step_.level = std::move(level);
  auto t = text_template::parse(message);
  if (t)
    b.step_.message = std::move(*t);
  else
    b.note("log message", t.error());
  return b;
}

step_builder step_builder::fail(std::string name, std::string kind,
                                std::string_view message) {
  step_builder b{std::move(name), step_kind::fail};
  b.step_.fail_kind = std::move(kind);
  if (!message.empty()) {
    auto t = text_template::parse(message);
    if (t)
      b.step_.message = std::move(*t);
    else
      b.note("fail message", t.error());
  }
  return b;
}

step_builder& step_builder::map_over(std::string_view over,
                                     std::uint32_t concurrency) {
  if (step_.kind != step_kind::call && step_.kind != step_kind::task) {
    note("map", {{}, 0, 0, {}, "a map step runs a call or a task per item"});
    return *this;
  }
  step_.child_kind = step_.kind;
  step_.kind = step_kind::map;
  step_.concurrency = concurrency;
  auto e = parse_expr("map over", over);
  if (e)
    step_.map_over = std::move(*e);
  else
    note("map over", e.error());
  return *this;
}

step_builder& step_builder::input(std::string key, std::string_view expr) {
  auto e = parse_expr("input." + key, expr);
  if (e)
    step_.input.fields.emplace_back(std::move(key), std::move(*e));
  else
    note("input", e.error());
  return *this;
}

step_builder& step_builder::input(std::string_view expr) {
  auto e = parse_expr("input", expr);
  if (e)
    step_.input.whole = std::move(*e);
  else
    note("input", e.error());
  return *this;
}

step_builder& step_builder::value(std::string key, std::string_view expr) {
  return input(std::move(key), expr);
}

step_builder& step_builder::queue(std::string queue) {
  step_.task_queue = std::move(queue);
  return *this;
}

step_builder& step_builder::retry(retry_policy policy) {
  step_.retry = policy;
  return *this;
}

step_builder& step_builder::timeout(std::string_view duration) {
  step_.start_to_close_timeout_ms = parse_ms("timeout", duration);
  return *this;
}

step_builder& step_builder::heartbeat_timeout(std::string_view duration) {
  step_.heartbeat_timeout_ms = parse_ms("heartbeat_timeout", duration);
  return *this;
}

step_builder& step_builder::approval_timeout(std::string_view duration) {
  step_.approval_timeout_ms = parse_ms("approval timeout", duration);
  return *this;
}

step_builder& step_builder::idempotency_key(std::string_view text) {
  auto t = text_template::parse(text);
  if (t)
    step_.idempotency_key = std::move(*t);
  else
    note("idempotency_key", t.error());
  return *this;
}

step_builder& step_builder::add_rule(error_match match, diverge_rule rule) {
  rule.kind = std::move(match.kind);
  rule.message_contains = std::move(match.message_contains);
  if (!match.condition.empty()) {
    auto e = parse_expr("diverge condition", match.condition);
    if (e)
      rule.condition = std::move(*e);
    else
      note("diverge condition", e.error());
  }
  step_.diverge.push_back(std::move(rule));
  return *this;
}

step_builder& step_builder::retry_on(error_match match,
                                     std::optional<retry_policy> policy) {
  diverge_rule r;
  r.action = diverge_action::retry;
  r.retry = policy;
  return add_rule(std::move(match), std::move(r));
}

step_builder& step_builder::goto_on(error_match match, std::string target) {
  diverge_rule r;
  r.action = diverge_action::go_to;
  r.target = std::move(target);
  return add_rule(std::move(match), std::move(r));
}

step_builder& step_builder::fail_on(error_match match) {
  diverge_rule r;
  r.action = diverge_action::fail;
  return add_rule(std::move(match), std::move(r));
}

step_builder& step_builder::continue_on(error_match match) {
  diverge_rule r;
  r.action = diverge_action::continue_;
  return add_rule(std::move(match), std::move(r));
}

workflow_builder::workflow_builder(std::string name, std::string version) {
  def_.name = std::move(name);
  def_.version = std::move(version);
}

void workflow_builder::note(const std::string& step, std::string msg,
                            int column) {
  if (!error_) error_ = diagnostic{{}, 0, column, step, std::move(msg)};
}

workflow_builder& workflow_builder::max_iterations(std::uint32_t n) {
  def_.max_iterations = n;
  return *this;
}

workflow_builder& workflow_builder::input_schema(json schema) {
  def_.input_schema = std::move(schema);
  return *this;
}

void workflow_builder::add_step(definition& d, step_builder& s, stage& st) {
  if (s.error_ && !error_) error_ = s.error_;
  st.steps.push_back(d.steps.size());
  d.steps.push_back(std::move(s.step_));
}

workflow_builder& workflow_builder::then(step_builder step) {
  stage st;
  st.name = step.step_.name;
  add_step(def_, step, st);
  def_.stages.push_back(std::move(st));
  return *this;
}

workflow_builder& workflow_builder::parallel(std::string name,
                                             std::vector<step_builder> steps) {
  stage st;
  st.name = std::move(name);
  st.parallel = true;
  for (auto& s : steps)
    add_step(def_, s, st);
  def_.stages.push_back(std::move(st));
  return *this;
}

workflow_builder& workflow_builder::branch(std::string_view condition,
                                           std::string target) {
  if (def_.stages.empty()) {
    note({}, "branch() before any step");
    return *this;
  }
  auto& st = def_.stages.back();
  auto e = parse_expr("branch condition", condition);
  if (!e) {
    note(st.name, e.error().message, e.error().column);
    return *this;
  }
  st.branch.push_back(branch_rule{std::move(*e), std::move(target), 0});
  return *this;
}

workflow_builder& workflow_builder::otherwise(std::string target) {
  if (def_.stages.empty()) {
    note({}, "otherwise() before any step");
    return *this;
  }
  def_.stages.back().branch.push_back(
    branch_rule{std::nullopt, std::move(target), 0});
  return *this;
}

workflow_builder& workflow_builder::output(std::string key,
                                           std::string_view expr) {
  auto e = parse_expr("output." + key, expr);
  if (e)
    def_.output.fields.emplace_back(std::move(key), std::move(*e));
  else
    note({}, e.error().message, e.error().column);
  return *this;
}

result<definition> workflow_builder::build() const {
  if (error_) return *error_;
  return finalize(def_);
}

} // namespace cerebelum::workflow
