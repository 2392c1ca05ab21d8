// The expression language: literals, paths, operators, functions, errors.
#include <catch2/catch.hpp>

#include "workflow/expression.hpp"

using namespace cerebelum::workflow;

namespace {

const json input = {{"amount", 250},
                    {"name", "Ada"},
                    {"tags", {"vip", "eu"}},
                    {"rate", 0.5},
                    {"nested", {{"list", {1, 2, 3}}}}};
const json steps = {{"validate", {{"ok", true}, {"score", 7}}}};

json eval(const std::string& src, std::int64_t now = 1234) {
  auto e = expression::parse(src);
  if (!e) FAIL("parse error in " << src << ": " << e.error().to_string());
  eval_scope sc;
  sc.input = &input;
  sc.steps = &steps;
  sc.now_ms = now;
  auto v = e->eval(sc);
  if (!v) FAIL("eval error in " << src << ": " << v.error().to_string());
  return *v;
}

diagnostic eval_error(const std::string& src) {
  auto e = expression::parse(src);
  REQUIRE(e.ok());
  eval_scope sc;
  sc.input = &input;
  sc.steps = &steps;
  auto v = e->eval(sc);
  REQUIRE_FALSE(v.ok());
  return v.error();
}

} // namespace

TEST_CASE("expressions evaluate literals, paths and operators") {
  struct row {
    const char* src;
    json want;
  };
  const row rows[] = {
    {"1 + 2 * 3", 7},
    {"(1 + 2) * 3", 9},
    {"7 / 2", 3.5},
    {"8 / 2", 4},
    {"7 % 3", 1},
    {"-input.amount", -250},
    {"input.rate * 4", 2.0},
    {"'a' + \"b\"", "ab"},
    {"[1, 2] + [3]", {1, 2, 3}},
    {"{a: 1, 'b c': [true, null]}", {{"a", 1}, {"b c", {true, nullptr}}}},
    {"input.amount > 100 and steps.validate.ok", true},
    {"input.amount < 100 or not steps.validate.ok", false},
    {"!(1 == 2) && 1 != 2", true},
    {"'vip' in input.tags", true},
    {"'x' in input.tags", false},
    {"'da' in input.name", true},
    {"input.nested.list[1]", 2},
    {"input.nested.list[-1]", 3},
    {"input['name']", "Ada"},
    {"len(input.tags) + len('abc') + len({a: 1})", 6},
    {"lower(input.name) + upper('x')", "adaX"},
    {"contains(input.tags, 'eu')", true},
    {"now()", 1234},
    {"'b' > 'a'", true},
    {"2 >= 2.0", true},
    {"null == null", true},
    {"steps.validate.score <= 7", true},
    {"1.5e3", 1500.0},
  };
  for (const auto& r : rows) {
    INFO(r.src);
    CHECK(eval(r.src) == r.want);
  }
}

TEST_CASE("now() returns the recorded decision time") {
  CHECK(eval("now()", 42) == 42);
  CHECK(eval("now() + 1000", 5) == 1005);
}

TEST_CASE("boolean operators short-circuit") {
  CHECK(eval("false and input.missing") == false);
  CHECK(eval("true or input.missing") == true);
}

TEST_CASE("evaluation errors are reported, never thrown") {
  struct row {
    const char* src;
    const char* message;
  };
  const row rows[] = {
    {"input.missing", "no field 'missing'"},
    {"input.name + 1", "needs numbers"},
    {"1 / 0", "division by zero"},
    {"5 % 0", "division by zero"},
    {"input.tags[9]", "out of range"},
    {"input.amount.x", "cannot read field"},
    {"'a' < 1", "cannot order"},
    {"not 1", "needs a boolean"},
    {"1 and true", "needs booleans"},
    {"len(1)", "len() of a number"},
    {"upper(1)", "needs a string"},
    {"error.kind", "not available"},
    {"1e308 * 1e308", "overflow"},
    {"1 in 2", "cannot look for"},
    {"-'x'", "cannot negate"},
    {"now(1)", "takes no arguments"},
  };
  for (const auto& r : rows) {
    INFO(r.src);
    CHECK_THAT(eval_error(r.src).message, Catch::Contains(r.message));
  }
}

TEST_CASE("syntax errors name the column") {
  struct row {
    const char* src;
    int column;
    const char* message;
  };
  const row rows[] = {
    {"1 +", 4, "unexpected end"},
    {"input.amount >> 2", 15, "unexpected character"},
    {"foo.bar", 1, "unknown name 'foo'"},
    {"len(1", 6, "expected ')'"},
    {"'abc", 1, "unterminated string"},
    {"input.", 7, "field name"},
    {"frobnicate(1)", 1, "unknown function"},
    {"1 2", 3, "trailing input"},
    {"[1, 2", 6, "expected ']'"},
    {"{a 1}", 4, "expected ':'"},
  };
  for (const auto& r : rows) {
    INFO(r.src);
    auto e = expression::parse(r.src);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().column == r.column);
    CHECK_THAT(e.error().message, Catch::Contains(r.message));
  }
}

TEST_CASE("deeply nested expressions are rejected instead of overflowing") {
  std::string deep(5000, '(');
  deep += "1";
  deep += std::string(5000, ')');
  auto e = expression::parse(deep);
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.error().message, Catch::Contains("nested too deeply"));
  std::string nots;
  for (int i = 0; i < 3000; ++i)
    nots += "not ";
  CHECK_FALSE(expression::parse(nots + "true").ok());
}

TEST_CASE("an expression lists the steps it reads") {
  auto e = expression::parse("steps.a.x + steps['b'] + len(steps.c)");
  REQUIRE(e.ok());
  CHECK(e->step_refs() == std::vector<std::string>{"a", "c"});
}

TEST_CASE("the canonical form ignores layout") {
  auto a = expression::parse("1+input.x*2");
  auto b = expression::parse("  1 +  input.x * 2 ");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->canonical() == b->canonical());
  CHECK(a->canonical() == "(1 + (input.x * 2))");
}

TEST_CASE("text templates interpolate expressions") {
  auto t = text_template::parse("order-${input.name}-${input.amount * 2}");
  REQUIRE(t.ok());
  eval_scope sc;
  sc.input = &input;
  auto v = t->render(sc);
  REQUIRE(v.ok());
  CHECK(*v == "order-Ada-500");
  auto bad = text_template::parse("x ${1 +} y");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().column == 8);
  CHECK_FALSE(text_template::parse("x ${input").ok());
}

TEST_CASE("integer overflow falls back to floating point") {
  CHECK(eval("9223372036854775807 + 1").is_number_float());
}
