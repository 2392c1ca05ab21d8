// YAML/JSON loader: reads the document into a `definition`, naming the
// file, line and step of every problem, then validates it (`finalize`).
#include "src/workflow/loader.hpp"

#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "src/workflow/duration.hpp"

namespace cerebelum::workflow {

namespace {

/// Internal only: never crosses the public API (caught in `load_node`).
struct load_error {
  diagnostic diag;
};

class reader {
 public:
  explicit reader(std::string file) : file_(std::move(file)) {}

  definition read(const YAML::Node& root) {
    expect_map(root, {}, "the document must be a mapping");
    known(root, {},
          {"name", "version", "max_iterations", "input_schema", "output",
           "steps"});
    definition def;
    def.file = file_;
    if (!root["name"]) fail(root, {}, "the workflow has no name");
    def.name = scalar(root["name"], {}, "name");
    if (auto v = root["version"]) def.version = scalar(v, {}, "version");
    if (auto v = root["max_iterations"])
      def.max_iterations = unsigned_int(v, {}, "max_iterations");
    if (auto v = root["input_schema"]) def.input_schema = to_json(v, 0);
    if (auto v = root["output"]) def.output = values(v, {}, "output");
    auto steps = root["steps"];
    if (!steps || !steps.IsSequence() || steps.size() == 0)
      fail(root, {}, "'steps' must be a non-empty list");
    for (const auto& item : steps)
      read_stage(def, item);
    return def;
  }

 private:
  [[noreturn]] void fail(const YAML::Node& at, const std::string& step,
                         std::string msg, int column = 0) {
    int line = 0;
    if (at.IsDefined()) {
      auto m = at.Mark();
      if (m.line >= 0) line = m.line + 1;
      if (column == 0 && m.column >= 0 && line > 0) column = m.column + 1;
    }
    throw load_error{diagnostic{file_, line, column, step, std::move(msg)}};
  }

  static int line_of(const YAML::Node& n) {
    auto m = n.Mark();
    return m.line >= 0 ? m.line + 1 : 0;
  }

  void expect_map(const YAML::Node& n, const std::string& step,
                  const std::string& msg) {
    if (!n.IsMap()) fail(n, step, msg);
  }

  void known(const YAML::Node& n, const std::string& step,
             std::initializer_list<std::string_view> keys) {
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) fail(kv.first, step, "keys must be scalars");
      const auto& k = kv.first.Scalar();
      bool ok = false;
      for (auto want : keys)
        ok = ok || k == want;
      if (!ok) fail(kv.first, step, "unknown key '" + k + "'");
    }
  }

  std::string scalar(const YAML::Node& n, const std::string& step,
                     const std::string& what) {
    if (!n || !n.IsScalar())
      fail(n, step, "'" + what + "' must be a string or number");
    return n.Scalar();
  }

  std::uint32_t unsigned_int(const YAML::Node& n, const std::string& step,
                             const std::string& what) {
    auto text = scalar(n, step, what);
    std::uint64_t v = 0;
    if (text.empty() || text.size() > 9) fail(n, step, what + ": not a count");
    for (char c : text) {
      if (c < '0' || c > '9') fail(n, step, what + ": not a count");
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return static_cast<std::uint32_t>(v);
  }

  std::int64_t duration(const YAML::Node& n, const std::string& step,
                        const std::string& what) {
    auto d = parse_duration(scalar(n, step, what));
    if (!d) fail(n, step, what + ": " + d.error().message);
    return *d;
  }

  bool boolean(const YAML::Node& n, const std::string& step,
               const std::string& what) {
    auto t = scalar(n, step, what);
    if (t == "true") return true;
    if (t == "false") return false;
    fail(n, step, "'" + what + "' must be true or false");
  }

  expression expr(const YAML::Node& n, const std::string& step,
                  const std::string& what) {
    auto text = scalar(n, step, what);
    auto e = expression::parse(text);
    if (!e)
      fail(n, step,
           "expression syntax error in " + what + " at column "
             + std::to_string(e.error().column) + ": " + e.error().message,
           e.error().column);
    return std::move(*e);
  }

  text_template text(const YAML::Node& n, const std::string& step,
                     const std::string& what) {
    auto t = text_template::parse(scalar(n, step, what));
    if (!t)
      fail(n, step,
           "expression syntax error in " + what + " at column "
             + std::to_string(t.error().column) + ": " + t.error().message,
           t.error().column);
    return std::move(*t);
  }

  /// A scalar is one expression; a mapping maps keys to expressions.
  /// Non-string scalars (numbers, booleans) are literals either way.
  value_template values(const YAML::Node& n, const std::string& step,
                        const std::string& what) {
    value_template v;
    if (n.IsScalar()) {
      v.whole = expr(n, step, what);
      return v;
    }
    if (!n.IsMap()) fail(n, step, "'" + what + "' must be a mapping or string");
    for (const auto& kv : n) {
      auto key = scalar(kv.first, step, what + " key");
      v.fields.emplace_back(key, expr(kv.second, step, what + "." + key));
    }
    return v;
  }

  json to_json(const YAML::Node& n, int depth) {
    if (depth > 64) fail(n, {}, "document nested too deeply");
    if (n.IsMap()) {
      json out = json::object();
      for (const auto& kv : n)
        out[scalar(kv.first, {}, "key")] = to_json(kv.second, depth + 1);
      return out;
    }
    if (n.IsSequence()) {
      json out = json::array();
      for (const auto& item : n)
        out.push_back(to_json(item, depth + 1));
      return out;
    }
    if (n.IsScalar()) {
      // Plain scalars follow YAML's core schema; quoted ones stay strings.
      if (n.Tag() != "!") {
        const auto& t = n.Scalar();
        if (t == "true" || t == "false" || t == "null"
            || (!t.empty() && (t[0] == '-' || (t[0] >= '0' && t[0] <= '9')))) {
          auto v = json::parse(t, nullptr, false);
          if (!v.is_discarded() && !v.is_structured()) return v;
        }
      }
      return n.Scalar();
    }
    return nullptr;
  }

  retry_policy policy(const YAML::Node& n, const std::string& step) {
    expect_map(n, step, "'retry' must be a mapping");
    known(n, step,
          {"max_attempts", "initial_interval", "backoff_coefficient",
           "max_interval", "jitter"});
    retry_policy p;
    if (auto v = n["max_attempts"])
      p.max_attempts = unsigned_int(v, step, "max_attempts");
    if (auto v = n["initial_interval"])
      p.initial_interval_ms = duration(v, step, "initial_interval");
    if (auto v = n["backoff_coefficient"]) {
      auto t = scalar(v, step, "backoff_coefficient");
      std::istringstream in{t};
      in.imbue(std::locale::classic());
      if (!(in >> p.backoff_coefficient) || !in.eof())
        fail(v, step,
             "invalid retry policy: backoff_coefficient '" + t
               + "' is not a number");
    }
    if (auto v = n["max_interval"])
      p.max_interval_ms = duration(v, step, "max_interval");
    if (auto v = n["jitter"]) p.jitter = boolean(v, step, "jitter");
    return p;
  }

  diverge_rule rule(const YAML::Node& n, const std::string& step) {
    expect_map(n, step, "a diverge rule must be a mapping");
    known(n, step, {"kind", "message", "if", "action", "goto", "retry"});
    diverge_rule r;
    r.line = line_of(n);
    if (auto v = n["kind"]) r.kind = scalar(v, step, "kind");
    if (auto v = n["message"]) r.message_contains = scalar(v, step, "message");
    if (auto v = n["if"]) r.condition = expr(v, step, "diverge condition");
    std::string action;
    if (auto v = n["action"]) action = scalar(v, step, "action");
    if (auto v = n["goto"]) {
      r.target = scalar(v, step, "goto");
      if (!action.empty() && action != "goto")
        fail(v, step, "diverge rule has both 'goto' and action " + action);
      action = "goto";
    }
    if (auto v = n["retry"]) {
      if (!action.empty() && action != "retry")
        fail(v, step, "diverge rule has both 'retry' and action " + action);
      action = "retry";
      r.retry = policy(v, step);
    }
    if (action == "retry")
      r.action = diverge_action::retry;
    else if (action == "goto")
      r.action = diverge_action::go_to;
    else if (action == "fail")
      r.action = diverge_action::fail;
    else if (action == "continue")
      r.action = diverge_action::continue_;
    else
      fail(n, step,
           "diverge rule needs an action: retry, goto, fail or "
           "continue");
    if (r.action == diverge_action::go_to && r.target.empty())
      fail(n, step, "diverge goto needs a target");
    return r;
  }

  branch_rule branch(const YAML::Node& n, const std::string& step) {
    expect_map(n, step, "a branch rule must be a mapping");
    known(n, step, {"if", "goto"});
    branch_rule b;
    b.line = line_of(n);
    if (auto v = n["if"]) b.condition = expr(v, step, "branch condition");
    if (!n["goto"]) fail(n, step, "branch rule needs 'goto'");
    b.target = scalar(n["goto"], step, "goto");
    return b;
  }

  void read_stage(definition& def, const YAML::Node& n) {
    expect_map(n, {}, "each step must be a mapping");
    if (!n["name"]) fail(n, {}, "step has no 'name'");
    auto name = scalar(n["name"], {}, "name");
    stage st;
    st.name = name;
    st.line = line_of(n);
    if (auto group = n["parallel"]) {
      known(n, name, {"name", "parallel", "branch"});
      if (!group.IsSequence() || group.size() == 0)
        fail(group, name, "'parallel' must be a non-empty list of steps");
      st.parallel = true;
      for (const auto& child : group) {
        expect_map(child, name, "each step must be a mapping");
        if (child["parallel"])
          fail(child, name, "parallel groups cannot be nested");
        if (child["branch"])
          fail(child["branch"], name,
               "a step inside a parallel group cannot branch; put the "
               "branch on the group");
        st.steps.push_back(def.steps.size());
        def.steps.push_back(read_step(child));
      }
    } else {
      st.steps.push_back(def.steps.size());
      def.steps.push_back(read_step(n));
    }
    if (auto b = n["branch"]) {
      if (!b.IsSequence()) fail(b, name, "'branch' must be a list");
      for (const auto& item : b)
        st.branch.push_back(branch(item, name));
    }
    def.stages.push_back(std::move(st));
  }

  step read_step(const YAML::Node& n);
  void read_kind(step& s, const YAML::Node& n);
  void read_other_kind(step& s, const YAML::Node& n);
  void read_map(step& s, const YAML::Node& m);
  void read_options(step& s, const YAML::Node& n);

  std::string file_;
};

step reader::read_step(const YAML::Node& n) {
  known(n, {},
        {"name", "call", "task", "set", "sleep", "approval", "log", "fail",
         "map", "input", "queue", "retry", "timeout", "heartbeat_timeout",
         "idempotency_key", "diverge", "branch"});
  step s;
  if (!n["name"]) fail(n, {}, "step has no 'name'");
  s.name = scalar(n["name"], {}, "name");
  s.line = line_of(n);
  read_kind(s, n);
  read_options(s, n);
  return s;
}

void reader::read_kind(step& s, const YAML::Node& n) {
  static const char* const kinds[] = {"call",     "task", "set", "sleep",
                                      "approval", "log",  "fail"};
  int count = 0;
  for (const char* k : kinds)
    if (n[k]) ++count;
  if (count != 1)
    fail(n, s.name,
         "a step needs exactly one kind: call, task, set, sleep, approval, "
         "log or fail");
  const auto& nm = s.name;
  if (auto v = n["call"]) {
    s.kind = step_kind::call;
    s.target = scalar(v, nm, "call");
  } else if (auto v = n["task"]) {
    s.kind = step_kind::task;
    s.target = scalar(v, nm, "task");
  } else if (auto v = n["set"]) {
    s.kind = step_kind::set;
    s.input = values(v, nm, "set");
  } else {
    read_other_kind(s, n);
  }
  if (auto m = n["map"]) read_map(s, m);
}

void reader::read_other_kind(step& s, const YAML::Node& n) {
  const auto& nm = s.name;
  if (auto v = n["sleep"]) {
    s.kind = step_kind::sleep;
    if (v.IsMap()) {
      known(v, nm, {"duration", "expr"});
      if (auto d = v["duration"]) s.sleep_ms = duration(d, nm, "sleep");
      if (auto e = v["expr"]) s.sleep_expr = expr(e, nm, "sleep expression");
    } else {
      s.sleep_ms = duration(v, nm, "sleep");
    }
  } else if (auto v = n["approval"]) {
    s.kind = step_kind::approval;
    if (v.IsMap()) {
      known(v, nm, {"data", "timeout"});
      if (auto d = v["data"]) s.input = values(d, nm, "approval data");
      if (auto t = v["timeout"])
        s.approval_timeout_ms = duration(t, nm, "approval timeout");
    } else if (!v.IsNull()) {
      fail(v, nm, "'approval' must be a mapping");
    }
  } else if (auto v = n["log"]) {
    s.kind = step_kind::log;
    if (v.IsMap()) {
      known(v, nm, {"message", "level"});
      s.message = text(v["message"], nm, "log message");
      if (auto l = v["level"]) s.level = scalar(l, nm, "level");
    } else {
      s.message = text(v, nm, "log message");
    }
  } else if (auto v = n["fail"]) {
    s.kind = step_kind::fail;
    if (v.IsMap()) {
      known(v, nm, {"kind", "message"});
      s.fail_kind = scalar(v["kind"], nm, "fail kind");
      if (auto m = v["message"]) s.message = text(m, nm, "fail message");
    } else {
      s.fail_kind = scalar(v, nm, "fail kind");
    }
  }
}

void reader::read_map(step& s, const YAML::Node& m) {
  const auto& nm = s.name;
  if (s.kind != step_kind::call && s.kind != step_kind::task)
    fail(m, nm, "a map step runs a call or a task per item");
  expect_map(m, nm, "'map' must be a mapping");
  known(m, nm, {"over", "concurrency"});
  s.child_kind = s.kind;
  s.kind = step_kind::map;
  if (!m["over"]) fail(m, nm, "map needs 'over'");
  s.map_over = expr(m["over"], nm, "map over");
  if (auto c = m["concurrency"])
    s.concurrency = unsigned_int(c, nm, "concurrency");
}

void reader::read_options(step& s, const YAML::Node& n) {
  const auto& nm = s.name;
  if (auto v = n["input"]) {
    if (s.kind == step_kind::set || s.kind == step_kind::approval)
      fail(v, nm, "'input' is for call, task and map steps");
    s.input = values(v, nm, "input");
  }
  if (auto v = n["queue"]) s.task_queue = scalar(v, nm, "queue");
  if (auto v = n["retry"]) s.retry = policy(v, nm);
  if (auto v = n["timeout"])
    s.start_to_close_timeout_ms = duration(v, nm, "timeout");
  if (auto v = n["heartbeat_timeout"])
    s.heartbeat_timeout_ms = duration(v, nm, "heartbeat_timeout");
  if (auto v = n["idempotency_key"])
    s.idempotency_key = text(v, nm, "idempotency_key");
  if (auto v = n["diverge"]) {
    if (!v.IsSequence()) fail(v, nm, "'diverge' must be a list");
    for (const auto& item : v)
      s.diverge.push_back(rule(item, nm));
  }
}

result<definition> load_node(const YAML::Node& root, const std::string& file) {
  try {
    reader r{file};
    auto def = r.read(root);
    return finalize(std::move(def));
  } catch (const load_error& e) {
    return e.diag;
  } catch (const YAML::Exception& e) {
    return diagnostic{file,
                      e.mark.line >= 0 ? e.mark.line + 1 : 0,
                      e.mark.column >= 0 ? e.mark.column + 1 : 0,
                      {},
                      e.msg};
  } catch (const std::exception& e) {
    return diagnostic{file, 0, 0, {}, std::string{"cannot load: "} + e.what()};
  }
}

YAML::Node to_yaml(const json& j, int depth) {
  if (depth > 64)
    throw load_error{{{}, 0, 0, {}, "document nested too deeply"}};
  YAML::Node n;
  if (j.is_object()) {
    n = YAML::Node(YAML::NodeType::Map);
    for (const auto& [k, v] : j.items())
      n[k] = to_yaml(v, depth + 1);
  } else if (j.is_array()) {
    n = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& v : j)
      n.push_back(to_yaml(v, depth + 1));
  } else if (j.is_string()) {
    n = j.get<std::string>();
  } else if (!j.is_null()) {
    n = j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return n;
}

} // namespace

result<definition> load_yaml(std::string_view text, std::string file) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string{text});
  } catch (const YAML::Exception& e) {
    return diagnostic{file,
                      e.mark.line >= 0 ? e.mark.line + 1 : 0,
                      e.mark.column >= 0 ? e.mark.column + 1 : 0,
                      {},
                      "syntax error: " + e.msg};
  } catch (const std::exception& e) {
    return diagnostic{file, 0, 0, {}, std::string{"cannot parse: "} + e.what()};
  }
  return load_node(root, file);
}

result<definition> load_json(const json& doc, std::string file) {
  YAML::Node root;
  try {
    root = to_yaml(doc, 0);
  } catch (const load_error& e) {
    auto d = e.diag;
    d.file = file;
    return d;
  } catch (const std::exception& e) {
    return diagnostic{file, 0, 0, {}, std::string{"cannot load: "} + e.what()};
  }
  return load_node(root, file);
}

result<definition> load_file(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return diagnostic{path.string(), 0, 0, {}, "cannot open the file"};
  std::ostringstream buf;
  buf << in.rdbuf();
  auto text = buf.str();
  if (path.extension() == ".json") {
    // Check it is JSON first so JSON syntax errors read as such; the YAML
    // parser then supplies line numbers for every later diagnostic.
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded())
      return diagnostic{path.string(), 0, 0, {}, "invalid JSON"};
    auto r = load_yaml(text, path.string());
    if (r || r.error().message.rfind("syntax error", 0) != 0) return r;
    return load_json(doc, path.string());
  }
  return load_yaml(text, path.string());
}

} // namespace cerebelum::workflow
