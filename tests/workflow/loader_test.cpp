// The YAML/JSON loader and the builder: equivalent definitions, the version
// hash, and error messages naming file, line, step and column.
#include <catch2/catch.hpp>

#include "workflow/builder.hpp"
#include "workflow/loader.hpp"

using namespace cerebelum::workflow;

namespace {

diagnostic load_error(const std::string& yaml) {
  auto r = load_yaml(yaml, "wf.yaml");
  REQUIRE_FALSE(r.ok());
  return r.error();
}

const char* const small = R"y(name: small
version: "2"
steps:
  - name: fetch
    call: data.fetch
    input: { id: "input.id" }
    retry: { max_attempts: 4, initial_interval: 2s }
    diverge:
      - kind: missing
        action: continue
  - name: both
    parallel:
      - name: left
        task: work.left
        queue: q
        timeout: 1m
      - name: right
        set: { v: "steps.fetch.x + 1" }
    branch:
      - if: "steps.right.v > 3"
        goto: done
  - name: nap
    sleep: 1500ms
  - name: done
    log: { message: "done ${input.id}", level: warn }
)y";

workflow_builder small_builder() {
  workflow_builder b{"small", "2"};
  b.then(step_builder::call("fetch", "data.fetch")
           .input("id", "input.id")
           .retry({.max_attempts = 4, .initial_interval_ms = 2000})
           .continue_on({.kind = "missing"}))
    .parallel("both",
              {step_builder::task("left", "work.left", "q").timeout("1m"),
               step_builder::set("right").value("v", "steps.fetch.x+1")})
    .branch("steps.right.v > 3", "done")
    .then(step_builder::sleep("nap", "1500ms"))
    .then(step_builder::log("done", "done ${input.id}", "warn"));
  return b;
}

} // namespace

TEST_CASE("a YAML definition loads with every part in place") {
  auto r = load_yaml(small, "small.yaml");
  REQUIRE(r.ok());
  const auto& d = *r;
  CHECK(d.name == "small");
  CHECK(d.version == "2");
  REQUIRE(d.stages.size() == 4);
  CHECK(d.stages[1].parallel);
  CHECK(d.stages[1].steps.size() == 2);
  CHECK(d.stages[1].branch.size() == 1);
  const auto& fetch = d.steps[0];
  CHECK(fetch.kind == step_kind::call);
  CHECK(fetch.retry->max_attempts == 4);
  CHECK(fetch.retry->initial_interval_ms == 2000);
  CHECK(fetch.diverge[0].action == diverge_action::continue_);
  CHECK(d.steps[1].start_to_close_timeout_ms == 60'000);
  CHECK(d.steps[3].sleep_ms == 1500);
  CHECK(d.steps[4].level == "warn");
  CHECK(d.version_hash != 0);
}

TEST_CASE("the builder produces the same definition as the YAML loader") {
  auto yaml = load_yaml(small);
  auto built = small_builder().build();
  REQUIRE(yaml.ok());
  REQUIRE(built.ok());
  CHECK(canonical_form(*yaml) == canonical_form(*built));
  CHECK(yaml->version_hash == built->version_hash);
}

TEST_CASE("the version hash follows meaning, not layout") {
  auto a = load_yaml(small);
  std::string relaid = small;
  relaid.replace(relaid.find("\"steps.fetch.x + 1\""), 19,
                 "'steps.fetch.x+1'  ");
  auto b = load_yaml(relaid);
  std::string changed = small;
  changed.replace(changed.find("1500ms"), 6, "1600ms");
  auto c = load_yaml(changed);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  CHECK(a->version_hash == b->version_hash);
  CHECK(a->version_hash != c->version_hash);
}

TEST_CASE("a JSON document loads like the equivalent YAML") {
  auto doc = json::parse(R"j({
    "name": "small", "version": "2",
    "steps": [
      {"name": "a", "call": "f", "input": {"x": "input.x"}},
      {"name": "b", "sleep": "2s"}
    ]})j");
  auto j = load_json(doc, "worker");
  auto y = load_yaml("name: small\nversion: '2'\nsteps:\n"
                     "  - {name: a, call: f, input: {x: input.x}}\n"
                     "  - {name: b, sleep: 2s}\n");
  REQUIRE(j.ok());
  REQUIRE(y.ok());
  CHECK(j->version_hash == y->version_hash);
  auto bad = load_json(json{{"name", "x"}, {"steps", {{{"name", "a"}}}}}, "w");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().to_string(), Catch::StartsWith("w: step 'a': "));
}

TEST_CASE("load errors name the file, line, step and problem") {
  struct row {
    std::string yaml;
    int line;
    std::string step;
    std::string message;
  };
  const std::vector<row> rows = {
    {"name: x\nsteps:\n  - name: a\n    call: f\n    bogus: 1\n", 5, "",
     "unknown key 'bogus'"},
    {"name: x\nsteps:\n  - name: a\n    call: f\n    timeout: 5 parsecs\n", 5,
     "a", "invalid duration"},
    {"name: x\nsteps:\n  - name: a\n    sleep: -3s\n", 4, "a",
     "invalid duration"},
    {"name: x\nsteps:\n  - name: a\n    call: f\n    set: {}\n", 3, "a",
     "exactly one kind"},
    {"name: x\nsteps:\n  - name: a\n    call: f\n    retry: { max_attempts: "
     "two }\n",
     5, "a", "max_attempts: not a count"},
    {"name: x\nsteps:\n  - name: a\n    call: f\n    diverge:\n      - kind: "
     "t\n",
     6, "a", "needs an action"},
    {"name: x\nsteps: [\n", 3, "", "syntax error"},
    {"name: x\nsteps: 3\n", 1, "", "'steps' must be a non-empty list"},
  };
  for (const auto& r : rows) {
    INFO(r.yaml);
    auto d = load_error(r.yaml);
    CHECK(d.file == "wf.yaml");
    CHECK(d.line == r.line);
    CHECK(d.step == r.step);
    CHECK_THAT(d.message, Catch::Contains(r.message));
  }
}

TEST_CASE("expression syntax errors name the line and the column") {
  auto d = load_error("name: x\nsteps:\n  - name: a\n    set:\n"
                      "      v: \"input.x +* 2\"\n");
  CHECK(d.line == 5);
  CHECK(d.step == "a");
  CHECK(d.column == 10);
  CHECK_THAT(d.message,
             Catch::Contains("expression syntax error in set.v at column 10"));
  CHECK(d.to_string().rfind("wf.yaml:5:10: step 'a': ", 0) == 0);
}

TEST_CASE("the builder reports bad expressions and durations") {
  auto r = workflow_builder{"x"}
             .then(step_builder::call("a", "f").input("v", "1 +"))
             .build();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().step == "a");
  CHECK(r.error().column == 4);
  auto t
    = workflow_builder{"x"}.then(step_builder::sleep("nap", "soon")).build();
  REQUIRE_FALSE(t.ok());
  CHECK_THAT(t.error().message, Catch::Contains("invalid duration 'soon'"));
}

TEST_CASE("plain YAML scalars in the input schema keep their types") {
  auto r = load_yaml("name: x\ninput_schema: {max: 5, strict: true, "
                     "label: '5'}\nsteps:\n  - {name: a, call: f}\n");
  REQUIRE(r.ok());
  CHECK(r->input_schema == json{{"max", 5}, {"strict", true}, {"label", "5"}});
}

TEST_CASE("every example workflow loads and validates") {
  for (const char* name :
       {"order.yaml", "payment_retry.yaml", "batch_poll.yaml"}) {
    INFO(name);
    auto r = load_file(std::string{CEREBELUM_EXAMPLES_DIR} + "/" + name);
    if (!r) FAIL(r.error().to_string());
    CHECK(r->version_hash != 0);
  }
}

TEST_CASE("a missing file is a clean error") {
  auto r = load_file("/nonexistent/wf.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "cannot open the file");
}
