// Fuzzes the expression language: any text is parsed as an expression and
// as a text template, then evaluated against a small context holding every
// root (input, steps, error, item, index) under the value limits of
// workflow/limits.hpp. Parsing and evaluating must return a value or a
// diagnostic, never crash, hang or throw; a parsed expression's canonical
// rendering, parsed again, must render the same (the version hash rests on
// it), and a value it builds must keep the value limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "workflow/expression.hpp"

using namespace cerebelum::workflow;

namespace {

struct context {
  json input = json::parse(R"({
    "order": {"id": "o-1", "amount": 120.5, "currency": "EUR",
              "items": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 1}]},
    "name": "Ada", "wait_ms": 1500, "n": -3, "big": 9223372036854775807,
    "tags": ["x", "y"], "odd key": true, "none": null, "text": "Größe €"
  })");
  json steps = json::parse(R"({
    "fraud": {"score": 0.25, "flags": []},
    "charge": {"ok": true, "id": "ch_1"},
    "approve": {"approved": false, "data": {"note": "n"}}
  })");
  json error = json::parse(R"({"kind": "timeout", "message": "took too long",
                               "details": {"after_ms": 30000},
                               "retryable": true})");
  json item = json::parse(R"({"sku": "a-1", "qty": 2})");
  json index = 1;
  eval_scope scope;

  context() {
    scope.input = &input;
    scope.steps = &steps;
    scope.error = &error;
    scope.item = &item;
    scope.index = &index;
    scope.now_ms = 1'700'000'000'000;
  }
};

void check_expression(std::string_view text, const eval_scope& scope) {
  auto e = expression::parse(text);
  if (!e) return;
  auto canonical = e->canonical();
  // Fully parenthesized, a long chain may pass the nesting limit and no
  // longer parse: only a rendering that parses is compared.
  auto again = expression::parse(canonical);
  if (again && again->canonical() != canonical) std::abort();
  (void)e->step_refs();
  auto v = e->eval(scope);
  if (v && limits::check_value(*v)) std::abort();
}

void check_template(std::string_view text, const eval_scope& scope) {
  auto t = text_template::parse(text);
  if (!t) return;
  (void)t->canonical();
  (void)t->step_refs();
  auto s = t->render(scope);
  if (s && s->size() > limits::max_value_bytes) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  static const context ctx;
  std::string_view text{reinterpret_cast<const char*>(data), size};
  check_expression(text, ctx.scope);
  check_template(text, ctx.scope);
  return 0;
}
