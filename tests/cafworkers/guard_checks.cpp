#include "tests/cafworkers/guard_checks.hpp"

#include <catch2/catch.hpp>

#include <chrono>

namespace cerebelum::test {

using namespace std::chrono_literals;

void require_node_serves(caf_node& node) {
  auto exited = node.process().wait_exit(0ms);
  INFO("node output:\n" << node.process().output());
  REQUIRE_FALSE(exited);
  auto [code, out] = node.cli({"workflows"});
  INFO(out);
  REQUIRE(code == 0);
}

void require_worker_completes(caf_node& node, const std::string& worker_id) {
  auto worker = start_worker(node, worker_id);
  auto id = "inv-" + worker_id;
  auto input = nlohmann::json{
    {"items", {{{"sku", "a"}, {"qty", 2}, {"price_cents", 150}}}},
    {"tax_rate", 0.2},
    {"work_ms", 0},
    {"send_after_ms", 0}};
  auto [code, out]
    = node.cli({"start", "caf_invoice", "--id", id, "--input", input.dump()});
  INFO(out);
  REQUIRE(code == 0);
  auto info = node.wait_status(id, "completed", 30s);
  INFO(info.dump() << "\nworker:\n" << worker->output());
  REQUIRE(info["status"] == "completed");
  CHECK(info["result"]["total"] == 360);
}

} // namespace cerebelum::test
