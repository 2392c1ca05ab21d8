// Hostile definitions and the limits that stop them: alias bombs, duplicate
// keys, text that is not UTF-8, names that forge log lines, oversized
// documents and expressions, and values that an execution doubles until
// the node runs out of memory. The tests that could blow up without their
// limit run in a forked child under an address-space limit and a timer, so
// a regression fails the test instead of taking the machine down.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/workflow/support.hpp"
#include "workflow/builder.hpp"
#include "workflow/limits.hpp"
#include "workflow/loader.hpp"
#include "workflow/validator.hpp"

using namespace cerebelum::workflow;
using cerebelum::workflow::test::alias_bomb;
using cerebelum::workflow::test::harness;
using cerebelum::workflow::test::must_load;

namespace {

/// What a bounded run reported.
struct bounded_run {
  /// The child's message (its first 4 KiB), empty if it died first.
  std::string message;
  /// Exit code, or 128 + signal.
  int status = -1;
  std::chrono::milliseconds took{0};
  /// Peak resident memory of the child, in KiB.
  long max_rss_kb = 0;
};

/// Runs `fn` in a forked child whose address space may grow by at most
/// `headroom` bytes and that is killed after `seconds`; `fn` returns the
/// message the parent gets.
bounded_run run_bounded(const std::function<std::string()>& fn,
                        std::size_t headroom, unsigned seconds) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  auto started = std::chrono::steady_clock::now();
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    rlimit as{};
    getrlimit(RLIMIT_AS, &as);
    // The current mapping plus the headroom.
    long pages = 0;
    if (FILE* f = fopen("/proc/self/statm", "r")) {
      if (fscanf(f, "%ld", &pages) != 1) pages = 0;
      fclose(f);
    }
    as.rlim_cur = static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + headroom;
    setrlimit(RLIMIT_AS, &as);
    alarm(seconds);
    std::string msg;
    try {
      msg = fn();
    } catch (const std::exception& e) {
      msg = std::string{"exception: "} + e.what();
    }
    msg.resize(std::min<std::size_t>(msg.size(), 4096));
    auto n = write(fds[1], msg.data(), msg.size());
    (void)n;
    _exit(0);
  }
  close(fds[1]);
  bounded_run out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = read(fds[0], buf, sizeof buf)) > 0)
    out.message.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  out.max_rss_kb = usage.ru_maxrss;
  return out;
}

/// 29 `set` steps, each the previous one twice: 2^30 bytes at the end.
std::string doubling_chain() {
  std::string y = "name: doubling\nsteps:\n  - name: s0\n"
                  "    set: \"input.s + input.s\"\n";
  for (int i = 1; i < 29; ++i)
    y += "  - name: s" + std::to_string(i) + "\n    set: \"steps.s"
         + std::to_string(i - 1) + " + steps.s" + std::to_string(i - 1)
         + "\"\n";
  return y;
}

diagnostic load_error(const std::string& yaml) {
  auto r = load_yaml(yaml, "wf.yaml");
  REQUIRE_FALSE(r.ok());
  return r.error();
}

json nested(int depth) {
  json v = 1;
  for (int i = 0; i < depth; ++i)
    v = json::array({std::move(v)});
  return v;
}

} // namespace

TEST_CASE("an alias bomb in an input schema is refused at once, in bounded "
          "memory") {
  auto text = alias_bomb();
  CHECK(text.size() < 1024);
  auto run = run_bounded(
    [&] {
      auto r = load_yaml(text, "bomb.yaml");
      return r ? std::string{"loaded"} : r.error().to_string();
    },
    256 * 1024 * 1024, 20);
  INFO(run.message);
  CHECK(run.status == 0);
  CHECK_THAT(run.message, Catch::StartsWith("bomb.yaml:"));
  CHECK_THAT(run.message, Catch::Contains("max_document_nodes"));
  CHECK(run.took < std::chrono::seconds{2});
  CHECK(run.max_rss_kb < 64 * 1024);
}

TEST_CASE("an alias bomb registered as a JSON value is refused too") {
  // The JSON form has no aliases, but a worker may send a huge document:
  // the same node budget applies while it is converted.
  json big = json::array();
  for (std::size_t i = 0; i <= limits::max_document_nodes; ++i)
    big.push_back(1);
  json doc = {{"name", "big"},
              {"input_schema", {{"enum", big}}},
              {"steps", {{{"name", "a"}, {"set", "1"}}}}};
  auto r = load_json(doc, "worker");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("max_document_nodes"));
}

TEST_CASE("an alias of a node that contains it is refused") {
  auto d = load_error("name: x\ninput_schema: &s\n  self: *s\n"
                      "steps:\n  - {name: a, set: '1'}\n");
  CHECK(d.line == 3);
  CHECK_THAT(d.message, Catch::Contains("contains it"));
}

TEST_CASE("a duplicate key is refused naming the key and its line") {
  auto d = load_error("name: x\nsteps:\n  - name: a\n    call: f\n"
                      "    call: g\n");
  CHECK(d.line == 5);
  CHECK_THAT(d.message, Catch::Contains("duplicate key 'call'"));
  CHECK_THAT(d.message, Catch::Contains("first at line 4"));
  auto top = load_error("name: x\nname: y\nsteps:\n  - {name: a, set: '1'}\n");
  CHECK(top.line == 2);
  CHECK_THAT(top.message, Catch::Contains("duplicate key 'name'"));
}

TEST_CASE("a duplicate key in a JSON definition is refused") {
  auto r = load_json_text(
    R"({"name": "x", "steps": [{"name": "a", "set": "1", "set": "2"}]})",
    "worker.json");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("duplicate key 'set'"));
}

TEST_CASE("a definition that is not UTF-8 is refused naming the file and "
          "the position") {
  auto d = load_error("name: x\nsteps:\n  - name: a\n    log: \"caf\xE9 !\"\n");
  CHECK(d.file == "wf.yaml");
  CHECK(d.line == 4);
  CHECK(d.column == 14);
  CHECK_THAT(d.message, Catch::Contains("invalid UTF-8"));
  CHECK_THAT(d.to_string(), Catch::StartsWith("wf.yaml:4:14: "));
  // An escape can produce what the raw text check never sees.
  auto e = load_error("name: x\nsteps:\n  - name: a\n    log: \"\\uD800\"\n");
  CHECK(e.line == 4);
  CHECK_THAT(e.message, Catch::Contains("invalid UTF-8")
                          || Catch::Contains("invalid unicode"));
  // So can a builder.
  auto b = workflow_builder{"x"}
             .then(step_builder::log("a", std::string{"caf\xE9"}))
             .build();
  REQUIRE_FALSE(b.ok());
  CHECK_THAT(b.error().message, Catch::Contains("UTF-8"));
}

TEST_CASE("a name with a newline or a control character is refused and "
          "never forges a line") {
  auto wf = load_error(
    "name: \"ok\\n2026-01-01 info node ready\"\nsteps:\n  - {name: a, "
    "set: '1'}\n");
  CHECK_THAT(wf.message, Catch::Contains("invalid workflow name"));
  CHECK(wf.to_string().find('\n') == std::string::npos);
  auto step = load_error("name: x\nsteps:\n  - {name: \"a\\rb\", set: '1'}\n");
  CHECK_THAT(step.message, Catch::Contains("invalid name"));
  CHECK(step.to_string().find('\r') == std::string::npos);
  auto queue = load_error("name: x\nsteps:\n  - {name: a, task: t, queue: "
                          "\"q\\u0007\"}\n");
  CHECK_THAT(queue.message, Catch::Contains("invalid queue name"));
  auto raw = load_error("name: x\x01y\nsteps:\n  - {name: a, set: '1'}\n");
  CHECK(raw.line == 1);
  CHECK_THAT(raw.message, Catch::Contains("control character 0x01"));
  for (const char* good : {"order", "billing.v2", "a-b_c.1", "9lives"})
    CHECK(is_valid_workflow_name(good));
  for (const char* bad : {"", ".hidden", "a b", "a/b", "caf\xC3\xA9"})
    CHECK_FALSE(is_valid_workflow_name(bad));
}

TEST_CASE("a document over the size limit is refused before it is parsed") {
  std::string y = "name: x\nsteps:\n  - {name: a, set: '1'}\n# ";
  y.append(limits::max_document_bytes, 'x');
  auto d = load_error(y);
  CHECK_THAT(d.message, Catch::Contains("max_document_bytes"));
}

TEST_CASE("more steps than the limit are refused") {
  std::string y = "name: x\nsteps:\n";
  for (std::size_t i = 0; i <= limits::max_steps; ++i)
    y += "  - {name: s" + std::to_string(i) + ", set: '1'}\n";
  auto d = load_error(y);
  CHECK(d.line == static_cast<int>(limits::max_steps) + 3);
  CHECK_THAT(d.message, Catch::Contains("max_steps"));
}

TEST_CASE("a document nested deeper than the limit is refused") {
  std::string y = "name: x\ninput_schema: ";
  y += std::string(100, '[') + std::string(100, ']');
  y += "\nsteps:\n  - {name: a, set: '1'}\n";
  auto d = load_error(y);
  CHECK_THAT(d.message, Catch::Contains("max_document_depth"));
}

TEST_CASE("an expression tree deeper than the limit is refused at load "
          "time") {
  std::string chain = "1";
  for (int i = 0; i < limits::max_expression_depth + 10; ++i)
    chain += " + 1";
  auto d
    = load_error("name: x\nsteps:\n  - name: a\n    set: \"" + chain + "\"\n");
  CHECK(d.line == 4);
  CHECK_THAT(d.message, Catch::Contains("max_expression_depth"));
  auto brackets = [](int n) {
    return std::string(static_cast<std::size_t>(n), '[') + "1"
           + std::string(static_cast<std::size_t>(n), ']');
  };
  CHECK(expression::parse(brackets(limits::max_expression_nesting)).ok());
  auto deep = expression::parse(brackets(limits::max_expression_nesting + 1));
  REQUIRE_FALSE(deep.ok());
  CHECK_THAT(deep.error().message, Catch::Contains("max_expression_nesting"));
  std::string path = "input";
  for (int i = 0; i < limits::max_expression_depth + 10; ++i)
    path += ".a";
  CHECK_FALSE(expression::parse(path).ok());
}

TEST_CASE("a doubling chain of set steps fails its step, not retryable, "
          "naming the step and the limit, in bounded memory") {
  auto def = must_load(doubling_chain());
  auto run = run_bounded(
    [&] {
      harness h{def, json{{"s", "xx"}}};
      h.run_all({});
      auto st = h.state();
      std::string out = to_string(st.status());
      if (st.error())
        out += "|" + st.error()->kind + "|"
               + (st.error()->retryable ? "retryable" : "final") + "|"
               + st.error()->message;
      return out;
    },
    512 * 1024 * 1024, 30);
  INFO(run.message);
  REQUIRE(run.status == 0);
  CHECK_THAT(run.message, Catch::StartsWith("failed|expression_error|final|"));
  // s0 is 4 bytes; s18 is 2^20: the first over 1,000,000 bytes.
  CHECK_THAT(run.message, Catch::Contains("step 's18' set"));
  CHECK_THAT(run.message, Catch::Contains("max_value_bytes"));
  CHECK(run.took < std::chrono::seconds{5});
  CHECK(run.max_rss_kb < 128 * 1024);
}

TEST_CASE("a diverge rule cannot retry a value-limit failure forever") {
  auto def = must_load(
    "name: d\nsteps:\n  - name: big\n    set: \"input.s + input.s\"\n"
    "    diverge:\n      - kind: expression_error\n"
    "        retry: { max_attempts: 3, initial_interval: 1s }\n");
  harness h{def, json{{"s", std::string(600'000, 'x')}}};
  h.run_all({"fire big", "fire big"});
  auto st = h.state();
  CHECK(st.status() == execution_status::failed);
  auto ev = h.events();
  CHECK(std::count(ev.begin(), ev.end(), "failed big expression_error") == 3);
}

TEST_CASE("values built by expressions are bounded in size and depth") {
  json input = {{"s", std::string(600'000, 'x')},
                {"deep", nested(100)},
                {"list", json::array({std::string(400'000, 'y')})}};
  eval_scope sc;
  sc.input = &input;
  auto fails = [&](const std::string& src, const char* limit) {
    INFO(src);
    auto e = expression::parse(src);
    REQUIRE(e.ok());
    auto v = e->eval(sc);
    REQUIRE_FALSE(v.ok());
    CHECK_THAT(v.error().message, Catch::Contains(limit));
  };
  fails("input.s + input.s", "max_value_bytes");
  fails("input.list + input.list + input.list", "max_value_bytes");
  fails("[input.s, input.s]", "max_value_bytes");
  fails("{a: input.s, b: input.s}", "max_value_bytes");
  // 100 levels from the input, 30 more from the literal.
  std::string wrap = "input.deep";
  for (int i = 0; i < 30; ++i)
    wrap = "[" + wrap + "]";
  fails(wrap, "max_value_depth");
  // Under the limits everything still works.
  auto ok = expression::parse("len(input.s + 'x')");
  REQUIRE(ok.ok());
  CHECK(*ok->eval(sc) == 600'001);
}

TEST_CASE("a template renders at most the limit") {
  json input = {{"s", std::string(600'000, 'x')}};
  eval_scope sc;
  sc.input = &input;
  auto t = text_template::parse("${input.s}${input.s}");
  REQUIRE(t.ok());
  auto r = t->render(sc);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("max_value_bytes"));
  auto key = text_template::parse("${input.s}");
  REQUIRE(key.ok());
  auto k = key->render(sc, limits::max_idempotency_key_bytes,
                       "max_idempotency_key_bytes");
  REQUIRE_FALSE(k.ok());
  CHECK_THAT(k.error().message, Catch::Contains("max_idempotency_key_bytes"));
}

TEST_CASE("a set step whose result is over the limit fails instead of "
          "writing an event the store refuses") {
  // `input` itself is not built, but recording it as the step's result
  // would need an event over the 1 MiB payload limit.
  auto def = must_load("name: d\nsteps:\n  - name: copy\n    set: input\n");
  harness h{def, json{{"s", std::string(1'010'000, 'x')}}};
  h.run_all({});
  auto st = h.state();
  REQUIRE(st.status() == execution_status::failed);
  CHECK_THAT(st.error()->message, Catch::Contains("step 'copy' set"));
  CHECK_THAT(st.error()->message, Catch::Contains("max_value_bytes"));
}

TEST_CASE("measuring a value nested far deeper than any limit stops at the "
          "limit") {
  // 100,000 levels: a recursive walk (or nlohmann's dump) would overflow
  // the stack; destroy it iteratively too.
  json v = nested(100'000);
  auto m = limits::measure(v);
  CHECK(m.depth == limits::max_value_depth + 1);
  CHECK(limits::check_value(v).has_value());
  while (v.is_array() && !v.empty()) {
    json inner = std::move(v[0]);
    v = std::move(inner);
  }
}

TEST_CASE("a loop of local steps that never ends fails its execution at the "
          "events limit of one decision instead of growing") {
  auto def = must_load(R"y(
name: spin
max_iterations: 100000000
steps:
  - name: a
    set: "input.n"
  - name: b
    log: "again"
    branch:
      - if: "steps.a == 'never'"
        goto: end
      - goto: a
)y");
  harness h{def, json{{"n", 1}}};
  auto d = h.decide();
  auto st = h.state();
  REQUIRE(st.status() == execution_status::failed);
  CHECK(st.error()->kind == "decision_too_large");
  CHECK_FALSE(st.error()->retryable);
  CHECK_THAT(st.error()->message, Catch::Contains("max_decision_events"));
  // The store takes at most 10,000 events in one append.
  CHECK(d.events.size() < 10'000);
}

TEST_CASE("a loop of set steps each yielding a large value fails at the "
          "bytes limit of one decision") {
  auto def = must_load(R"y(
name: heavy
steps:
  - name: a
    set: "input.s"
  - name: b
    set: "input.s"
    branch:
      - if: "len(steps.b) == 0"
        goto: end
      - goto: a
)y");
  // Two events of 900 KB an iteration: without the limit, the 1,000
  // iterations max_iterations allows would record 1.8 GB in one append.
  auto run = run_bounded(
    [&] {
      harness h{def, json{{"s", std::string(900'000, 'x')}}};
      auto d = h.decide();
      auto st = h.state();
      return std::string{to_string(st.status())} + "|"
             + (st.error() ? st.error()->kind : std::string{}) + "|"
             + std::to_string(d.events.size());
    },
    1024UL * 1024 * 1024, 30);
  INFO(run.message);
  REQUIRE(run.status == 0);
  CHECK_THAT(run.message, Catch::StartsWith("failed|decision_too_large|"));
  CHECK(run.max_rss_kb < 512 * 1024);
}
