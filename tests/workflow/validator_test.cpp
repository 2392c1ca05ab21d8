// Validation: each structural problem is found and named.
#include <catch2/catch.hpp>

#include "workflow/loader.hpp"

using namespace cerebelum::workflow;

namespace {

struct row {
  const char* what;
  std::string yaml;
  int line;
  std::string step;
  std::string message;
};

} // namespace

TEST_CASE("invalid definitions are rejected with the step and the problem") {
  const std::vector<row> rows = {
    {"unknown branch target",
     "name: x\nsteps:\n  - name: a\n    call: f\n    branch:\n"
     "      - goto: nowhere\n",
     6, "a", "unknown step 'nowhere' referenced as branch target"},
    {"unknown goto target",
     "name: x\nsteps:\n  - name: a\n    call: f\n    diverge:\n"
     "      - goto: nowhere\n",
     6, "a", "unknown step 'nowhere' referenced by diverge goto"},
    {"duplicate name",
     "name: x\nsteps:\n  - name: a\n    call: f\n  - name: a\n    call: g\n", 5,
     "a", "duplicate name 'a'"},
    {"reserved name", "name: x\nsteps:\n  - name: end\n    call: f\n", 3, "end",
     "invalid name"},
    {"unreachable step",
     "name: x\nsteps:\n  - name: a\n    call: f\n    branch: [ { goto: end } "
     "]\n  - name: b\n    call: g\n",
     6, "b", "unreachable step"},
    {"inescapable cycle",
     "name: x\nsteps:\n  - name: a\n    call: f\n  - name: b\n    call: g\n"
     "    branch: [ { goto: a } ]\n",
     3, "a", "a cycle with no branch that can exit it"},
    {"unknown step in expression",
     "name: x\nsteps:\n  - name: a\n    set: { v: \"steps.zz.v\" }\n", 3, "a",
     "unknown step 'zz' referenced in an expression"},
    {"step that cannot have run yet",
     "name: x\nsteps:\n  - name: a\n    set: { v: \"steps.b.v\" }\n"
     "  - name: b\n    call: f\n",
     3, "a", "steps.b, which cannot have run before this step"},
    {"sibling in the same parallel group",
     "name: x\nsteps:\n  - name: g\n    parallel:\n      - name: a\n"
     "        call: f\n      - name: b\n        set: { v: \"steps.a\" }\n",
     7, "b", "cannot have run before"},
    {"bad retry coefficient",
     "name: x\nsteps:\n  - name: a\n    call: f\n    retry: { "
     "backoff_coefficient: 0.5 }\n",
     3, "a", "invalid retry policy: backoff_coefficient"},
    {"max below initial",
     "name: x\nsteps:\n  - name: a\n    call: f\n    retry: { "
     "initial_interval: 10s, max_interval: 1s }\n",
     3, "a", "max_interval is below initial_interval"},
    {"zero attempts",
     "name: x\nsteps:\n  - name: a\n    call: f\n    retry: { max_attempts: 0 "
     "}\n",
     3, "a", "max_attempts must be"},
    {"zero sleep", "name: x\nsteps:\n  - name: a\n    sleep: 0s\n", 3, "a",
     "invalid duration"},
    {"task without queue", "name: x\nsteps:\n  - name: a\n    task: t\n", 3,
     "a", "task needs a task queue"},
    {"goto inside a parallel group",
     "name: x\nsteps:\n  - name: g\n    parallel:\n      - name: a\n"
     "        call: f\n        diverge: [ { goto: g } ]\n",
     7, "a", "goto is not allowed inside a parallel group"},
    {"rule after otherwise",
     "name: x\nsteps:\n  - name: a\n    call: f\n    branch:\n      - goto: "
     "end\n      - if: \"true\"\n        goto: a\n",
     7, "a", "branch rule after an unconditional one"},
    {"no name", "steps:\n  - name: a\n    call: f\n", 1, "",
     "the workflow has no name"},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    auto res = load_yaml(r.yaml, "v.yaml");
    REQUIRE_FALSE(res.ok());
    const auto& d = res.error();
    CHECK(d.file == "v.yaml");
    CHECK(d.line == r.line);
    CHECK(d.step == r.step);
    CHECK_THAT(d.message, Catch::Contains(r.message));
  }
}

TEST_CASE("a loop with a conditional exit is valid and may read later steps") {
  auto r = load_yaml("name: x\nsteps:\n  - name: a\n"
                     "    set: { prev: \"steps.b\" }\n"
                     "  - name: b\n    call: f\n"
                     "    branch: [ { if: \"steps.b.again\", goto: a } ]\n");
  if (!r) FAIL(r.error().to_string());
}

TEST_CASE("a branch may read the results of its own stage") {
  auto r = load_yaml("name: x\nsteps:\n  - name: g\n    parallel:\n"
                     "      - { name: a, call: f }\n"
                     "      - { name: b, call: f }\n"
                     "    branch: [ { if: \"steps.a.ok and steps.b.ok\", "
                     "goto: end } ]\n  - name: c\n    call: f\n");
  if (!r) FAIL(r.error().to_string());
}
