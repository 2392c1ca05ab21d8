// Input schemas: the JSON-Schema subset checked before an execution starts.
#include <catch2/catch.hpp>

#include "workflow/input_schema.hpp"
#include "workflow/loader.hpp"

using namespace cerebelum::workflow;

TEST_CASE("an input that matches the schema is accepted") {
  auto def = load_yaml(R"y(name: x
input_schema:
  type: object
  required: [order_id, amount]
  properties:
    order_id: { type: string, minLength: 1 }
    amount: { type: number, minimum: 0 }
    items: { type: array, items: { type: integer }, maxItems: 3 }
steps:
  - { name: a, call: f }
)y");
  REQUIRE(def.ok());
  CHECK(
    check_input(*def, {{"order_id", "o"}, {"amount", 5}, {"items", {1}}}).ok());
  struct row {
    json input;
    const char* message;
  };
  const row rows[] = {
    {json::array(), "input: expected object, got array"},
    {{{"amount", 5}}, "missing required field 'order_id'"},
    {{{"order_id", ""}, {"amount", 5}}, "input.order_id: violates minLength"},
    {{{"order_id", "o"}, {"amount", -1}}, "input.amount: is below the minimum"},
    {{{"order_id", "o"}, {"amount", 1}, {"items", {1, "x"}}},
     "input.items[1]: expected integer"},
    {{{"order_id", "o"}, {"amount", 1}, {"items", {1, 2, 3, 4}}},
     "violates maxItems"},
  };
  for (const auto& r : rows) {
    INFO(r.input.dump());
    auto res = check_input(*def, r.input);
    REQUIRE_FALSE(res.ok());
    CHECK_THAT(res.error().message, Catch::Contains(r.message));
  }
}

TEST_CASE("a definition without a schema accepts any input") {
  auto def = load_yaml("name: x\nsteps:\n  - { name: a, call: f }\n");
  REQUIRE(def.ok());
  CHECK(check_input(*def, 42).ok());
}

TEST_CASE("enum and closed objects are enforced") {
  json schema = {{"type", "object"},
                 {"additionalProperties", false},
                 {"properties", {{"mode", {{"enum", {"fast", "slow"}}}}}}};
  CHECK(check_against_schema(schema, {{"mode", "fast"}}).ok());
  CHECK_FALSE(check_against_schema(schema, {{"mode", "warp"}}).ok());
  CHECK_FALSE(check_against_schema(schema, {{"other", 1}}).ok());
}

TEST_CASE("the demo order workflow checks its input") {
  auto def = load_file(std::string{CEREBELUM_EXAMPLES_DIR} + "/order.yaml");
  REQUIRE(def.ok());
  CHECK(check_input(*def, {{"order_id", "o-1"}, {"amount", 10}, {"items", {1}}})
          .ok());
  auto missing = check_input(*def, {{"order_id", "o-1"}, {"amount", 10}});
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("'items'"));
}
