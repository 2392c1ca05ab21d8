#include "src/demo/demo_functions.hpp"

#include <cmath>
#include <string>

#include "actors/function_registry.hpp"

namespace cerebelum::demo {

namespace {

using json = nlohmann::json;
using actors::step_failure;

/// Fails the step for good: retrying cannot fix a malformed order.
[[noreturn]] void invalid_order(const std::string& message) {
  throw step_failure("invalid_order", message, false);
}

json validate(const json& in) {
  if (!in.is_object()) invalid_order("the order is not an object");
  auto id = in.value("order_id", json{});
  if (!id.is_string() || id.get<std::string>().empty())
    invalid_order("order_id is missing or empty");
  auto amount = in.value("amount", json{});
  if (!amount.is_number()) invalid_order("amount is missing or not a number");
  if (amount.get<double>() < 0)
    invalid_order("amount must not be negative, got " + amount.dump());
  auto items = in.value("items", json{});
  if (!items.is_array() || items.empty())
    invalid_order("items must be a non-empty array");
  return {{"order_id", id}, {"amount", amount}, {"item_count", items.size()}};
}

json check_inventory(const json& in) {
  auto reserved = json::array();
  for (auto& item : in.value("items", json::array())) {
    auto sku = item.value("sku", std::string{});
    auto qty = item.value("qty", 1);
    if (sku.empty() || qty <= 0)
      throw step_failure("bad_item", "every item needs a sku and qty > 0",
                         false);
    // Demo stock: SKUs starting with "oos-" are out of stock.
    if (sku.rfind("oos-", 0) == 0)
      throw step_failure("out_of_stock", "sku " + sku + " is out of stock",
                         true);
    reserved.push_back({{"sku", sku}, {"qty", qty}});
  }
  return {{"order_id", in.value("order_id", "")}, {"reserved", reserved}};
}

json check_fraud(const json& in) {
  // Demo scoring: larger amounts are riskier, saturating at 10,000.
  double amount = in.value("amount", 0.0);
  double score = std::min(1.0, std::max(0.0, amount / 10000.0));
  score = std::round(score * 100.0) / 100.0;
  return {{"order_id", in.value("order_id", "")}, {"score", score}};
}

json ship(const json& in) {
  auto id = in.value("order_id", std::string{});
  std::size_t units = 0;
  for (auto& item : in.value("items", json::array()))
    units += item.value("qty", 1);
  return {
    {"shipment_id", "ship-" + id}, {"carrier", "demo-post"}, {"units", units}};
}

/// Reads the integer `key` of a bench step's input.
long long bench_arg(const json& in, const char* key) {
  auto i = in.find(key);
  if (i == in.end() || !i->is_number_integer())
    throw step_failure("bad_input", std::string{key} + " must be an integer",
                       false);
  return i->get<long long>();
}

} // namespace

void register_order_functions(actors::function_registry& registry) {
  registry.add("orders.validate", validate);
  registry.add("orders.check_inventory", check_inventory);
  registry.add("orders.check_fraud", check_fraud);
  registry.add("orders.ship", ship);
}

void register_bench_functions(actors::function_registry& registry) {
  // Arithmetic only: they run on the execution's actor (docs/engine.md,
  // *Where native functions run*).
  registry.add(
    "bench.add_one",
    [](const json& in) {
      return json{{"n", bench_arg(in, "i") + 1}};
    },
    actors::run_on::actor);
  registry.add(
    "bench.double",
    [](const json& in) {
      return json{{"n", bench_arg(in, "n") * 2}};
    },
    actors::run_on::actor);
  registry.add(
    "bench.add_three",
    [](const json& in) {
      return json{{"n", bench_arg(in, "n") + 3}};
    },
    actors::run_on::actor);
}

void register_demo_functions(actors::function_registry& registry) {
  register_order_functions(registry);
  register_bench_functions(registry);
}

} // namespace cerebelum::demo
