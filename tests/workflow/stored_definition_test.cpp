// A definition stored as its canonical document comes back as the same
// definition (the same version hash), and a damaged document is refused.

#include <catch2/catch.hpp>

#include <string>

#include "workflow/builder.hpp"
#include "workflow/loader.hpp"
#include "workflow/stored_definition.hpp"

using namespace cerebelum::workflow;

namespace {

definition load_example(const std::string& name) {
  auto r = load_file(std::string{CEREBELUM_EXAMPLES_DIR} + "/" + name);
  if (!r) FAIL(r.error().to_string());
  return std::move(*r);
}

} // namespace

TEST_CASE("every example definition round-trips through its stored document "
          "to the same version") {
  for (const char* name :
       {"order.yaml", "payment_retry.yaml", "batch_poll.yaml"}) {
    INFO(name);
    auto def = load_example(name);
    auto doc = to_stored_document(def);
    auto back = from_stored_document(doc, def.version_hash, "store");
    if (!back) FAIL(back.error().to_string());
    CHECK(back->version_hash == def.version_hash);
    CHECK(to_stored_document(*back) == doc);
    CHECK(back->name == def.name);
    CHECK(back->steps.size() == def.steps.size());
    CHECK(back->stages.size() == def.stages.size());
    CHECK(back->file == "store");
  }
}

TEST_CASE("a builder definition with templates, rules and a map round-trips") {
  auto built = workflow_builder{"rt", "2"}
                 .then(step_builder::call("a", "f.a")
                         .input("x", "input.x + 1")
                         .retry({.max_attempts = 4, .initial_interval_ms = 10})
                         .retry_on({.kind = "timeout"})
                         .goto_on({.kind = "bad"}, "c")
                         .idempotency_key("k-${input.x}"))
                 .parallel("p", {step_builder::sleep_expr("s", "input.ms"),
                                 step_builder::log("l", "x=${steps.a}")})
                 .branch("steps.a > 3", "c")
                 .otherwise("end")
                 .then(step_builder::task("c", "t.c", "q")
                         .map_over("input.items", 2)
                         .input("item")
                         .timeout("5s")
                         .heartbeat_timeout("1s"))
                 .output("a", "steps.a")
                 .build();
  if (!built) FAIL(built.error().to_string());
  auto doc = to_stored_document(*built);
  auto back = from_stored_document(doc, built->version_hash, "builder");
  if (!back) FAIL(back.error().to_string());
  CHECK(back->version_hash == built->version_hash);
  CHECK(to_stored_document(*back) == doc);
}

TEST_CASE("a stored document that does not hash to its version is refused") {
  auto def = load_example("order.yaml");
  auto doc = to_stored_document(def);
  auto other = from_stored_document(doc, def.version_hash + 1, "store");
  REQUIRE_FALSE(other.ok());
  CHECK_THAT(other.error().message, Catch::Contains("damaged"));
  CHECK_THAT(other.error().message, Catch::Contains("hashes to version"));
  // An edited step: still a valid definition, but not this version.
  auto pos = doc.find("\"name\":\"validate\"");
  REQUIRE(pos != std::string::npos);
  auto edited = doc;
  edited.replace(pos, 17, "\"name\":\"validatf\"");
  auto r = from_stored_document(edited, def.version_hash, "store");
  REQUIRE_FALSE(r.ok());
}

TEST_CASE("a stored document that is not a definition is refused, naming "
          "the problem") {
  auto r = from_stored_document("{\"name\": 3}", 1, "store");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("damaged"));
  auto t = from_stored_document("not json", 1, "store");
  REQUIRE_FALSE(t.ok());
  CHECK_THAT(t.error().message, Catch::Contains("damaged"));
}
