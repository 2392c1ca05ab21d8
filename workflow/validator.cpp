#include "workflow/validator.hpp"

#include <cmath>
#include <set>
#include <unordered_map>

#include "workflow/limits.hpp"

namespace cerebelum::workflow {

namespace {

/// The stage graph: edges a stage can take once its steps are done (or
/// when a step's diverge rule jumps). Node `n` (= stage count) is "end".
struct stage_graph {
  std::vector<std::vector<std::size_t>> next;
  std::vector<bool> exits;
};

stage_graph build_graph(const definition& def) {
  auto n = def.stages.size();
  stage_graph g{std::vector<std::vector<std::size_t>>(n + 1),
                std::vector<bool>(n + 1, false)};
  g.exits[n] = true;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& st = def.stages[i];
    bool otherwise = false;
    for (const auto& b : st.branch) {
      if (!b.condition) otherwise = true;
      auto t = b.target == end_target ? static_cast<int>(n)
                                      : def.stage_index(b.target);
      if (t >= 0) g.next[i].push_back(static_cast<std::size_t>(t));
    }
    if (!otherwise) g.next[i].push_back(i + 1);
    for (auto s : st.steps) {
      if (def.steps[s].kind == step_kind::fail) g.exits[i] = true;
      for (const auto& r : def.steps[s].diverge) {
        auto t = def.stage_index(r.target);
        if (r.action == diverge_action::go_to && t >= 0)
          g.next[i].push_back(static_cast<std::size_t>(t));
      }
    }
  }
  return g;
}

/// `reach[a][b]`: b can be entered after a completed (path of length >= 1).
std::vector<std::vector<bool>> reachability(const stage_graph& g) {
  auto n = g.next.size();
  std::vector<std::vector<bool>> reach(n, std::vector<bool>(n, false));
  for (std::size_t a = 0; a < n; ++a) {
    std::vector<std::size_t> todo = g.next[a];
    while (!todo.empty()) {
      auto b = todo.back();
      todo.pop_back();
      if (reach[a][b]) continue;
      reach[a][b] = true;
      for (auto c : g.next[b])
        todo.push_back(c);
    }
  }
  return reach;
}

/// Printable ASCII but space: task types, queues, error kinds.
bool is_token(std::string_view s) {
  if (s.size() > limits::max_name_bytes) return false;
  for (char c : s)
    if (c < 0x21 || c > 0x7E) return false;
  return true;
}

/// Every string of a JSON value is UTF-8 (the builder takes any `json`).
bool utf8_strings(const json& v, int depth) {
  if (depth > limits::max_document_depth) return false;
  if (v.is_string())
    return !limits::invalid_utf8_at(v.get_ref<const std::string&>());
  if (v.is_object()) {
    for (const auto& [k, x] : v.items())
      if (limits::invalid_utf8_at(k) || !utf8_strings(x, depth + 1))
        return false;
  } else if (v.is_array()) {
    for (const auto& x : v)
      if (!utf8_strings(x, depth + 1)) return false;
  }
  return true;
}

class checker {
 public:
  explicit checker(const definition& def)
    : def_(def), graph_(build_graph(def)), reach_(reachability(graph_)) {
    for (std::size_t i = 0; i < def_.steps.size(); ++i)
      step_index_.emplace(def_.steps[i].name, static_cast<int>(i));
    stage_of_.resize(def_.steps.size(), 0);
    for (std::size_t i = 0; i < def_.stages.size(); ++i)
      for (auto s : def_.stages[i].steps)
        if (s < stage_of_.size()) stage_of_[s] = i;
  }

  std::vector<diagnostic> run() {
    if (def_.name.empty()) add(0, {}, "the workflow has no name");
    if (def_.stages.empty()) add(0, {}, "the workflow has no steps");
    if (def_.max_iterations == 0) add(0, {}, "max_iterations must be >= 1");
    check_identity();
    check_names();
    for (std::size_t i = 0; i < def_.stages.size(); ++i)
      check_stage(i);
    if (problems_.empty()) check_graph();
    for (const auto& r : def_.output.step_refs())
      if (def_.step_index(r) < 0)
        add(0, {}, "unknown step '" + r + "' referenced in the output");
    return std::move(problems_);
  }

 private:
  void add(int line, const std::string& step, std::string msg) {
    problems_.push_back(diagnostic{def_.file, line, 0, step, std::move(msg)});
  }

  void check_identity() {
    if (!def_.name.empty() && !is_valid_workflow_name(def_.name))
      add(0, {},
          "invalid workflow name '" + def_.name + "' (1 to "
            + std::to_string(limits::max_name_bytes)
            + " letters, digits, '.', '_' or '-', starting with a letter or "
              "a digit)");
    if (!def_.version.empty()
        && (def_.version.size() > limits::max_version_bytes
            || !is_valid_workflow_name(def_.version)))
      add(0, {},
          "invalid version '" + def_.version + "' (up to "
            + std::to_string(limits::max_version_bytes)
            + " letters, digits, '.', '_' or '-', starting with a letter or "
              "a digit)");
    if (!utf8_strings(def_.input_schema, 0))
      add(0, {},
          "input_schema: a string is not valid UTF-8 (or the schema is "
          "nested more than "
            + std::to_string(limits::max_document_depth) + " levels deep)");
  }

  /// Task types, queues, error kinds: echoed in logs and matched by
  /// workers, so no spaces or control characters.
  void check_tokens(const step& s) {
    auto token = [&](const std::string& v, const char* what, int line) {
      if (!is_token(v))
        add(line, s.name,
            std::string{"invalid "} + what + " '" + v + "' (up to "
              + std::to_string(limits::max_name_bytes)
              + " printable ASCII characters, no spaces)");
    };
    token(s.target, "call or task type", s.line);
    token(s.task_queue, "queue name", s.line);
    token(s.fail_kind, "fail kind", s.line);
    for (const auto& r : s.diverge)
      token(r.kind, "error kind", r.line);
    // Free text: any UTF-8.
    auto text = [&](const std::string& v, const char* what, int line) {
      if (limits::invalid_utf8_at(v))
        add(line, s.name, std::string{what} + " is not valid UTF-8");
    };
    for (const auto& r : s.diverge)
      text(r.message_contains, "a diverge message", r.line);
    if (s.message) text(s.message->source(), "the message", s.line);
    if (s.idempotency_key)
      text(s.idempotency_key->source(), "the idempotency key", s.line);
    for (const auto& [key, e] : s.input.fields) {
      text(key, "an input key", s.line);
      text(e.source(), "an input expression", s.line);
    }
    if (s.input.whole) text(s.input.whole->source(), "the input", s.line);
  }

  void check_names() {
    std::set<std::string> seen;
    auto claim = [&](const std::string& name, int line) {
      if (!is_valid_name(name))
        add(line, name,
            "invalid name '" + name
              + "' (letters, digits and '_', not starting with a digit; "
                "'end' is reserved)");
      else if (!seen.insert(name).second)
        add(line, name, "duplicate name '" + name + "'");
    };
    for (const auto& s : def_.steps)
      claim(s.name, s.line);
    for (const auto& st : def_.stages)
      if (st.parallel) claim(st.name, st.line);
  }

  void check_policy(const retry_policy& p, int line, const std::string& step) {
    if (p.max_attempts < 1 || p.max_attempts > 10'000)
      add(line, step, "invalid retry policy: max_attempts must be 1..10000");
    if (p.initial_interval_ms <= 0)
      add(line, step, "invalid retry policy: initial_interval must be > 0");
    if (!std::isfinite(p.backoff_coefficient) || p.backoff_coefficient < 1.0
        || p.backoff_coefficient > 100.0)
      add(line, step,
          "invalid retry policy: backoff_coefficient must be in [1, 100]");
    if (p.max_interval_ms != 0 && p.max_interval_ms < p.initial_interval_ms)
      add(line, step,
          "invalid retry policy: max_interval is below initial_interval");
  }

  void check_step(const step& s, std::size_t stage_idx) {
    const auto& st = def_.stages[stage_idx];
    auto need = [&](bool ok, const char* what) {
      if (!ok) add(s.line, s.name, what);
    };
    switch (s.kind) {
      case step_kind::call:
        need(!s.target.empty(), "call needs a function");
        break;
      case step_kind::task:
        need(!s.target.empty(), "task needs a task type");
        need(!s.task_queue.empty(), "task needs a task queue");
        break;
      case step_kind::map:
        need(s.map_over.has_value(), "map needs 'over'");
        need(!s.target.empty(), "map needs a call or task to run per item");
        need(s.child_kind == step_kind::call || s.child_kind == step_kind::task,
             "map children must be call or task");
        need(s.child_kind != step_kind::task || !s.task_queue.empty(),
             "task needs a task queue");
        break;
      case step_kind::sleep:
        need(s.sleep_ms > 0 || s.sleep_expr.has_value(),
             "invalid duration: sleep needs a duration > 0");
        break;
      case step_kind::fail:
        need(!s.fail_kind.empty(), "fail needs a kind");
        break;
      case step_kind::log:
        need(s.level == "debug" || s.level == "info" || s.level == "warn"
               || s.level == "error",
             "log level must be debug, info, warn or error");
        break;
      default: break;
    }
    need(s.start_to_close_timeout_ms >= 0 && s.heartbeat_timeout_ms >= 0
           && s.approval_timeout_ms >= 0 && s.sleep_ms >= 0,
         "invalid duration: durations must not be negative");
    check_tokens(s);
    if (s.retry) check_policy(*s.retry, s.line, s.name);
    for (const auto& r : s.diverge) {
      if (r.retry) check_policy(*r.retry, r.line, s.name);
      if (r.action == diverge_action::go_to) {
        if (st.parallel)
          add(r.line, s.name, "goto is not allowed inside a parallel group");
        else if (def_.stage_index(r.target) < 0)
          add(r.line, s.name,
              "unknown step '" + r.target + "' referenced by diverge goto");
      }
      if (r.condition) check_refs(r.condition->step_refs(), s, stage_idx);
    }
    check_refs(s.input.step_refs(), s, stage_idx);
    if (s.message) check_refs(s.message->step_refs(), s, stage_idx);
    if (s.idempotency_key)
      check_refs(s.idempotency_key->step_refs(), s, stage_idx);
    if (s.sleep_expr) check_refs(s.sleep_expr->step_refs(), s, stage_idx);
    if (s.map_over) check_refs(s.map_over->step_refs(), s, stage_idx);
  }

  /// A reference before the stage runs: x must be able to finish earlier.
  void check_refs(const std::vector<std::string>& refs, const step& s,
                  std::size_t stage_idx, bool after_stage = false,
                  int line = 0) {
    for (const auto& r : refs) {
      auto it = step_index_.find(r);
      if (it == step_index_.end()) {
        add(line ? line : s.line, s.name,
            "unknown step '" + r + "' referenced in an expression");
        continue;
      }
      auto from = stage_of_[static_cast<std::size_t>(it->second)];
      bool same = after_stage && from == stage_idx;
      if (!same && !reach_[from][stage_idx])
        add(line ? line : s.line, s.name,
            "expression reads steps." + r + ", which cannot have run before "
              + (after_stage ? "this branch" : "this step"));
    }
  }

  void check_stage(std::size_t i) {
    const auto& st = def_.stages[i];
    if (st.steps.empty()) {
      add(st.line, st.name, "a parallel group needs at least one step");
      return;
    }
    for (auto s : st.steps)
      check_step(def_.steps[s], i);
    const auto& head = def_.steps[st.steps.front()];
    bool otherwise = false;
    for (const auto& b : st.branch) {
      if (otherwise)
        add(b.line, st.name, "branch rule after an unconditional one");
      if (!b.condition) otherwise = true;
      if (b.target != end_target && def_.stage_index(b.target) < 0)
        add(b.line, st.name,
            "unknown step '" + b.target + "' referenced as branch target");
      if (b.condition)
        check_refs(b.condition->step_refs(), head, i, true, b.line);
    }
  }

  void check_graph() {
    auto n = def_.stages.size();
    for (std::size_t i = 1; i < n; ++i)
      if (!reach_[0][i])
        add(def_.stages[i].line, def_.stages[i].name,
            "unreachable step: no path from the first step leads here");
    // Stages from which no exit can be reached: every path loops forever.
    std::vector<bool> escapes(n + 1, false);
    for (std::size_t i = 0; i <= n; ++i) {
      if (graph_.exits[i]) escapes[i] = true;
      for (std::size_t j = 0; j <= n && !escapes[i]; ++j)
        if (reach_[i][j] && graph_.exits[j]) escapes[i] = true;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if ((i == 0 || reach_[0][i]) && !escapes[i]) {
        add(def_.stages[i].line, def_.stages[i].name,
            "a cycle with no branch that can exit it runs through here");
        break;
      }
    }
  }

  const definition& def_;
  stage_graph graph_;
  std::vector<std::vector<bool>> reach_;
  std::unordered_map<std::string_view, int> step_index_;
  std::vector<std::size_t> stage_of_;
  std::vector<diagnostic> problems_;
};

} // namespace

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > limits::max_name_bytes
      || name == end_target)
    return false;
  if (name[0] >= '0' && name[0] <= '9') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

bool is_valid_workflow_name(std::string_view name) {
  if (name.empty() || name.size() > limits::max_name_bytes) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  for (char c : name)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::vector<diagnostic> validate(const definition& def) {
  // Before the stage graph, whose reachability matrix is quadratic in the
  // number of stages (the builder can make any number).
  if (def.steps.size() > limits::max_steps)
    return {diagnostic{def.file,
                       0,
                       0,
                       {},
                       "the workflow has more than "
                         + std::to_string(limits::max_steps)
                         + " steps (limit max_steps)"}};
  return checker{def}.run();
}

} // namespace cerebelum::workflow
