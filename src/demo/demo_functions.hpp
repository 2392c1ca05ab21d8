#pragma once

// Native functions a node registers out of the box: the `orders.*` steps of
// the demo order workflow (examples/workflows/order.yaml) and the `bench.*`
// steps of the end-to-end benchmark (bench/http/). All are deterministic
// functions of their input.

namespace cerebelum::actors {
class function_registry;
} // namespace cerebelum::actors

namespace cerebelum::demo {

/// Adds orders.validate, orders.check_inventory, orders.check_fraud and
/// orders.ship to `registry`.
void register_order_functions(actors::function_registry& registry);

/// Adds bench.add_one (n = i + 1), bench.double (n * 2) and bench.add_three
/// (n + 3) to `registry`.
void register_bench_functions(actors::function_registry& registry);

/// Both of the above.
void register_demo_functions(actors::function_registry& registry);

} // namespace cerebelum::demo
