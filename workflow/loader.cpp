// YAML/JSON loader: reads the document into a `definition`, naming the
// file, line and step of every problem, then validates it (`finalize`).
#include "workflow/loader.hpp"

#include <fstream>
#include <sstream>
#include <unordered_set>

#include "workflow/document.hpp"
#include "workflow/duration.hpp"
#include "workflow/limits.hpp"

namespace cerebelum::workflow {

namespace {

using detail::doc_node;
using detail::document;

/// Internal only: never crosses the public API (caught in `load_document`).
struct load_error {
  diagnostic diag;
};

/// Entries of a map: (key, value) pairs.
struct entries {
  const doc_node& map;

  struct iterator {
    const doc_node* const* at;
    std::pair<const doc_node&, const doc_node&> operator*() const {
      return {*at[0], *at[1]};
    }
    iterator& operator++() {
      at += 2;
      return *this;
    }
    bool operator!=(const iterator& other) const {
      return at != other.at;
    }
  };

  iterator begin() const {
    return {map.items.data()};
  }
  iterator end() const {
    return {map.items.data() + (map.is_map() ? map.items.size() : 0)};
  }
};

class reader {
 public:
  explicit reader(std::string file) : file_(std::move(file)) {}

  definition read(const doc_node* root) {
    expect_map(root, {}, "the document must be a mapping");
    known(*root, {},
          {"name", "version", "max_iterations", "input_schema", "output",
           "steps"});
    definition def;
    def.file = file_;
    if (!root->get("name")) fail(root, {}, "the workflow has no name");
    def.name = scalar(root->get("name"), {}, "name");
    if (auto v = root->get("version")) def.version = scalar(v, {}, "version");
    if (auto v = root->get("max_iterations"))
      def.max_iterations = unsigned_int(v, {}, "max_iterations");
    if (auto v = root->get("input_schema")) def.input_schema = to_json(*v);
    if (auto v = root->get("output")) def.output = values(v, {}, "output");
    auto steps = root->get("steps");
    if (!steps || !steps->is_sequence() || steps->size() == 0)
      fail(root, {}, "'steps' must be a non-empty list");
    for (const auto* item : steps->items)
      read_stage(def, item);
    return def;
  }

 private:
  [[noreturn]] void fail(const doc_node* at, const std::string& step,
                         std::string msg, int column = 0) {
    int line = 0;
    if (at != nullptr) {
      line = at->line;
      if (column == 0 && line > 0) column = at->column;
    }
    throw load_error{diagnostic{file_, line, column, step, std::move(msg)}};
  }

  void expect_map(const doc_node* n, const std::string& step,
                  const std::string& msg) {
    if (n == nullptr || !n->is_map()) fail(n, step, msg);
  }

  void known(const doc_node& n, const std::string& step,
             std::initializer_list<std::string_view> keys) {
    for (auto [key, value] : entries{n}) {
      bool ok = false;
      for (auto want : keys)
        ok = ok || key.text == want;
      if (!ok) fail(&key, step, "unknown key '" + key.text + "'");
    }
  }

  std::string scalar(const doc_node* n, const std::string& step,
                     const std::string& what) {
    if (n == nullptr || !n->is_scalar())
      fail(n, step, "'" + what + "' must be a string or number");
    return n->text;
  }

  std::uint32_t unsigned_int(const doc_node* n, const std::string& step,
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

  std::int64_t duration(const doc_node* n, const std::string& step,
                        const std::string& what) {
    auto d = parse_duration(scalar(n, step, what));
    if (!d) fail(n, step, what + ": " + d.error().message);
    return *d;
  }

  bool boolean(const doc_node* n, const std::string& step,
               const std::string& what) {
    auto t = scalar(n, step, what);
    if (t == "true") return true;
    if (t == "false") return false;
    fail(n, step, "'" + what + "' must be true or false");
  }

  expression expr(const doc_node* n, const std::string& step,
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

  text_template text(const doc_node* n, const std::string& step,
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
  value_template values(const doc_node* n, const std::string& step,
                        const std::string& what) {
    value_template v;
    if (n->is_scalar()) {
      v.whole = expr(n, step, what);
      return v;
    }
    if (!n->is_map())
      fail(n, step, "'" + what + "' must be a mapping or string");
    for (auto [key, value] : entries{*n}) {
      auto k = scalar(&key, step, what + " key");
      v.fields.emplace_back(k, expr(&value, step, what + "." + k));
    }
    return v;
  }

  /// The document's limits bound this walk: aliases were counted when the
  /// document was built, so what it copies is at most `max_document_nodes`
  /// nodes and `max_document_text_bytes` bytes, `max_document_depth` deep.
  json to_json(const doc_node& n) {
    if (n.is_map()) {
      json out = json::object();
      for (auto [key, value] : entries{n})
        out[scalar(&key, {}, "key")] = to_json(value);
      return out;
    }
    if (n.is_sequence()) {
      json out = json::array();
      for (const auto* item : n.items)
        out.push_back(to_json(*item));
      return out;
    }
    if (n.is_scalar()) {
      // Plain scalars follow YAML's core schema; quoted ones stay strings.
      if (!n.quoted) {
        const auto& t = n.text;
        if (t == "true" || t == "false" || t == "null"
            || (!t.empty() && (t[0] == '-' || (t[0] >= '0' && t[0] <= '9')))) {
          auto v = json::parse(t, nullptr, false);
          if (!v.is_discarded() && !v.is_structured()) return v;
        }
      }
      return n.text;
    }
    return nullptr;
  }

  retry_policy policy(const doc_node* n, const std::string& step) {
    expect_map(n, step, "'retry' must be a mapping");
    known(*n, step,
          {"max_attempts", "initial_interval", "backoff_coefficient",
           "max_interval", "jitter"});
    retry_policy p;
    if (auto v = n->get("max_attempts"))
      p.max_attempts = unsigned_int(v, step, "max_attempts");
    if (auto v = n->get("initial_interval"))
      p.initial_interval_ms = duration(v, step, "initial_interval");
    if (auto v = n->get("backoff_coefficient")) {
      auto t = scalar(v, step, "backoff_coefficient");
      std::istringstream in{t};
      in.imbue(std::locale::classic());
      if (!(in >> p.backoff_coefficient) || !in.eof())
        fail(v, step,
             "invalid retry policy: backoff_coefficient '" + t
               + "' is not a number");
    }
    if (auto v = n->get("max_interval"))
      p.max_interval_ms = duration(v, step, "max_interval");
    if (auto v = n->get("jitter")) p.jitter = boolean(v, step, "jitter");
    return p;
  }

  diverge_rule rule(const doc_node* n, const std::string& step) {
    expect_map(n, step, "a diverge rule must be a mapping");
    known(*n, step, {"kind", "message", "if", "action", "goto", "retry"});
    diverge_rule r;
    r.line = n->line;
    if (auto v = n->get("kind")) r.kind = scalar(v, step, "kind");
    if (auto v = n->get("message"))
      r.message_contains = scalar(v, step, "message");
    if (auto v = n->get("if")) r.condition = expr(v, step, "diverge condition");
    std::string action;
    if (auto v = n->get("action")) action = scalar(v, step, "action");
    if (auto v = n->get("goto")) {
      r.target = scalar(v, step, "goto");
      if (!action.empty() && action != "goto")
        fail(v, step, "diverge rule has both 'goto' and action " + action);
      action = "goto";
    }
    if (auto v = n->get("retry")) {
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

  branch_rule branch(const doc_node* n, const std::string& step) {
    expect_map(n, step, "a branch rule must be a mapping");
    known(*n, step, {"if", "goto"});
    branch_rule b;
    b.line = n->line;
    if (auto v = n->get("if")) b.condition = expr(v, step, "branch condition");
    if (!n->get("goto")) fail(n, step, "branch rule needs 'goto'");
    b.target = scalar(n->get("goto"), step, "goto");
    return b;
  }

  void add_step(definition& def, const doc_node* n) {
    if (def.steps.size() >= limits::max_steps)
      fail(n, {},
           "the workflow has more than " + std::to_string(limits::max_steps)
             + " steps (limit max_steps)");
    def.steps.push_back(read_step(n));
  }

  void read_stage(definition& def, const doc_node* n) {
    expect_map(n, {}, "each step must be a mapping");
    if (!n->get("name")) fail(n, {}, "step has no 'name'");
    auto name = scalar(n->get("name"), {}, "name");
    stage st;
    st.name = name;
    st.line = n->line;
    if (auto group = n->get("parallel")) {
      known(*n, name, {"name", "parallel", "branch"});
      if (!group->is_sequence() || group->size() == 0)
        fail(group, name, "'parallel' must be a non-empty list of steps");
      st.parallel = true;
      for (const auto* child : group->items) {
        expect_map(child, name, "each step must be a mapping");
        if (child->get("parallel"))
          fail(child, name, "parallel groups cannot be nested");
        if (auto b = child->get("branch"))
          fail(b, name,
               "a step inside a parallel group cannot branch; put the "
               "branch on the group");
        st.steps.push_back(def.steps.size());
        add_step(def, child);
      }
    } else {
      st.steps.push_back(def.steps.size());
      add_step(def, n);
    }
    if (auto b = n->get("branch")) {
      if (!b->is_sequence()) fail(b, name, "'branch' must be a list");
      for (const auto* item : b->items)
        st.branch.push_back(branch(item, name));
    }
    def.stages.push_back(std::move(st));
  }

  step read_step(const doc_node* n);
  void read_kind(step& s, const doc_node& n);
  void read_other_kind(step& s, const doc_node& n);
  void read_map(step& s, const doc_node* m);
  void read_options(step& s, const doc_node& n);

  std::string file_;
};

step reader::read_step(const doc_node* n) {
  known(*n, {},
        {"name", "call", "task", "set", "sleep", "approval", "log", "fail",
         "map", "input", "queue", "retry", "timeout", "heartbeat_timeout",
         "idempotency_key", "diverge", "branch"});
  step s;
  if (!n->get("name")) fail(n, {}, "step has no 'name'");
  s.name = scalar(n->get("name"), {}, "name");
  s.line = n->line;
  read_kind(s, *n);
  read_options(s, *n);
  return s;
}

void reader::read_kind(step& s, const doc_node& n) {
  static const char* const kinds[] = {"call",     "task", "set", "sleep",
                                      "approval", "log",  "fail"};
  int count = 0;
  for (const char* k : kinds)
    if (n.get(k)) ++count;
  if (count != 1)
    fail(&n, s.name,
         "a step needs exactly one kind: call, task, set, sleep, approval, "
         "log or fail");
  const auto& nm = s.name;
  if (auto v = n.get("call")) {
    s.kind = step_kind::call;
    s.target = scalar(v, nm, "call");
  } else if (auto v = n.get("task")) {
    s.kind = step_kind::task;
    s.target = scalar(v, nm, "task");
  } else if (auto v = n.get("set")) {
    s.kind = step_kind::set;
    s.input = values(v, nm, "set");
  } else {
    read_other_kind(s, n);
  }
  if (auto m = n.get("map")) read_map(s, m);
}

void reader::read_other_kind(step& s, const doc_node& n) {
  const auto& nm = s.name;
  if (auto v = n.get("sleep")) {
    s.kind = step_kind::sleep;
    if (v->is_map()) {
      known(*v, nm, {"duration", "expr"});
      if (auto d = v->get("duration")) s.sleep_ms = duration(d, nm, "sleep");
      if (auto e = v->get("expr"))
        s.sleep_expr = expr(e, nm, "sleep expression");
    } else {
      s.sleep_ms = duration(v, nm, "sleep");
    }
  } else if (auto v = n.get("approval")) {
    s.kind = step_kind::approval;
    if (v->is_map()) {
      known(*v, nm, {"data", "timeout"});
      if (auto d = v->get("data")) s.input = values(d, nm, "approval data");
      if (auto t = v->get("timeout"))
        s.approval_timeout_ms = duration(t, nm, "approval timeout");
    } else if (!v->is_null()) {
      fail(v, nm, "'approval' must be a mapping");
    }
  } else if (auto v = n.get("log")) {
    s.kind = step_kind::log;
    if (v->is_map()) {
      known(*v, nm, {"message", "level"});
      s.message = text(v->get("message"), nm, "log message");
      if (auto l = v->get("level")) s.level = scalar(l, nm, "level");
    } else {
      s.message = text(v, nm, "log message");
    }
  } else if (auto v = n.get("fail")) {
    s.kind = step_kind::fail;
    if (v->is_map()) {
      known(*v, nm, {"kind", "message"});
      s.fail_kind = scalar(v->get("kind"), nm, "fail kind");
      if (auto m = v->get("message")) s.message = text(m, nm, "fail message");
    } else {
      s.fail_kind = scalar(v, nm, "fail kind");
    }
  }
}

void reader::read_map(step& s, const doc_node* m) {
  const auto& nm = s.name;
  if (s.kind != step_kind::call && s.kind != step_kind::task)
    fail(m, nm, "a map step runs a call or a task per item");
  expect_map(m, nm, "'map' must be a mapping");
  known(*m, nm, {"over", "concurrency"});
  s.child_kind = s.kind;
  s.kind = step_kind::map;
  if (!m->get("over")) fail(m, nm, "map needs 'over'");
  s.map_over = expr(m->get("over"), nm, "map over");
  if (auto c = m->get("concurrency"))
    s.concurrency = unsigned_int(c, nm, "concurrency");
}

void reader::read_options(step& s, const doc_node& n) {
  const auto& nm = s.name;
  if (auto v = n.get("input")) {
    if (s.kind == step_kind::set || s.kind == step_kind::approval)
      fail(v, nm, "'input' is for call, task and map steps");
    s.input = values(v, nm, "input");
  }
  if (auto v = n.get("queue")) s.task_queue = scalar(v, nm, "queue");
  if (auto v = n.get("retry")) s.retry = policy(v, nm);
  if (auto v = n.get("timeout"))
    s.start_to_close_timeout_ms = duration(v, nm, "timeout");
  if (auto v = n.get("heartbeat_timeout"))
    s.heartbeat_timeout_ms = duration(v, nm, "heartbeat_timeout");
  if (auto v = n.get("idempotency_key"))
    s.idempotency_key = text(v, nm, "idempotency_key");
  if (auto v = n.get("diverge")) {
    if (!v->is_sequence()) fail(v, nm, "'diverge' must be a list");
    for (const auto* item : v->items)
      s.diverge.push_back(rule(item, nm));
  }
}

result<definition> load_document(const result<document>& doc,
                                 const std::string& file) {
  if (!doc) return doc.error();
  try {
    reader r{file};
    auto def = r.read(doc->root());
    return finalize(std::move(def));
  } catch (const load_error& e) {
    return e.diag;
  } catch (const std::exception& e) {
    return diagnostic{file, 0, 0, {}, std::string{"cannot load: "} + e.what()};
  }
}

/// Parses JSON text within the document limits, refusing duplicate keys
/// (nlohmann keeps the last of two equal keys without a word). Never throws.
result<json> parse_json_text(std::string_view text, const std::string& file) {
  if (text.size() > limits::max_document_bytes)
    return diagnostic{file,
                      0,
                      0,
                      {},
                      "the document is " + std::to_string(text.size())
                        + " bytes, over the limit of "
                        + std::to_string(limits::max_document_bytes)
                        + " bytes (max_document_bytes)"};
  std::vector<std::unordered_set<std::string>> keys;
  std::optional<diagnostic> problem;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (problem) return false;
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= limits::max_document_depth) {
          problem = diagnostic{file,
                               0,
                               0,
                               {},
                               "the document is nested more than "
                                 + std::to_string(limits::max_document_depth)
                                 + " levels deep (limit max_document_depth)"};
          return false;
        }
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty()
            && !keys.back().insert(parsed.get<std::string>()).second) {
          problem
            = diagnostic{file,
                         0,
                         0,
                         {},
                         "duplicate key '" + parsed.get<std::string>() + "'"};
          return false;
        }
        break;
      default: break;
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), check, true);
  } catch (const json::parse_error& e) {
    if (problem) return *problem;
    // e.what() quotes the input, which may be anything: say where only.
    return diagnostic{
      file, 0, 0, {}, "invalid JSON (at byte " + std::to_string(e.byte) + ")"};
  } catch (const std::exception&) {
    if (problem) return *problem;
    return diagnostic{file, 0, 0, {}, "invalid JSON"};
  }
  if (problem) return *problem;
  return doc;
}

} // namespace

result<definition> load_yaml(std::string_view text, std::string file) {
  return load_document(document::from_yaml(text, file), file);
}

result<definition> load_json(const json& doc, std::string file) {
  return load_document(document::from_json(doc, file), file);
}

result<definition> load_json_text(std::string_view text, std::string file) {
  auto doc = parse_json_text(text, file);
  if (!doc) return doc.error();
  // JSON is YAML: the YAML reader supplies line numbers for every later
  // diagnostic; the JSON value is the fallback for what YAML reads
  // differently.
  auto r = load_yaml(text, file);
  if (r || r.error().message.rfind("syntax error", 0) != 0) return r;
  return load_json(*doc, std::move(file));
}

result<definition> load_file(const std::filesystem::path& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > limits::max_document_bytes)
    return diagnostic{path.string(),
                      0,
                      0,
                      {},
                      "the file is " + std::to_string(size)
                        + " bytes, over the limit of "
                        + std::to_string(limits::max_document_bytes)
                        + " bytes (max_document_bytes)"};
  std::ifstream in{path, std::ios::binary};
  if (!in) return diagnostic{path.string(), 0, 0, {}, "cannot open the file"};
  std::ostringstream buf;
  buf << in.rdbuf();
  auto text = buf.str();
  if (path.extension() == ".json") return load_json_text(text, path.string());
  return load_yaml(text, path.string());
}

} // namespace cerebelum::workflow
