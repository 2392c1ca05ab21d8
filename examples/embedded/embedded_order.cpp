// Embedding Cerebelum in a C++ program: a workflow defined with the builder
// API, native steps registered as C++ functions, a node started in-process on
// the embedded store, and an execution driven through `engine_api`.
//
//   build/examples/embedded/embedded_order [DATA_DIR]
//
// Exits 0 when the execution completed with the expected result.

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "actors/engine_api.hpp"
#include "actors/errc.hpp"
#include "actors/function_registry.hpp"
#include "actors/node.hpp"
#include "workflow/builder.hpp"

namespace wf = cerebelum::workflow;
namespace ac = cerebelum::actors;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// The workflow: price the items, then charge, retrying a flaky payment
/// gateway with backoff, then a receipt computed by the engine itself.
wf::result<wf::definition> make_workflow() {
  using wf::step_builder;
  return wf::workflow_builder{"checkout"}
    .then(
      step_builder::call("price", "shop.price").input("items", "input.items"))
    .then(step_builder::call("charge", "shop.charge")
            .input("amount", "steps.price.total")
            .retry_on({.kind = "gateway_busy"},
                      wf::retry_policy{.max_attempts = 3,
                                       .initial_interval_ms = 10}))
    .then(step_builder::set("receipt")
            .value("total", "steps.price.total")
            .value("charge_id", "steps.charge.charge_id"))
    .output("receipt", "steps.receipt")
    .build();
}

/// Native steps: plain C++ functions over JSON.
std::shared_ptr<ac::function_registry> make_functions() {
  auto fns = std::make_shared<ac::function_registry>();
  fns->add("shop.price", [](const json& in) {
    double total = 0;
    for (auto& item : in.at("items"))
      total += item.at("price").get<double>() * item.value("qty", 1);
    return json{{"total", total}};
  });
  auto calls = std::make_shared<int>(0);
  fns->add("shop.charge", [calls](const json& in) {
    // The gateway is busy on the first call: the workflow's retry rule
    // handles it.
    if (++*calls == 1)
      throw ac::step_failure{"gateway_busy", "payment gateway busy", true};
    return json{{"charge_id", "ch-" + std::to_string(*calls)},
                {"amount", in.at("amount")}};
  });
  return fns;
}

int run(caf::actor_system& sys, const std::filesystem::path& dir,
        const wf::definition& def) {
  ac::node_config cfg;
  cfg.data_dir = dir;
  cfg.definitions.push_back(def);
  cfg.functions = make_functions();
  auto node = ac::node::start(sys, cfg);
  if (!node) {
    std::cerr << "node failed: " << sys.render(node.error()) << "\n";
    return 1;
  }
  auto api = node->api();
  ac::start_request req;
  req.workflow = "checkout";
  req.input = {{"items",
                {{{"sku", "pen"}, {"price", 2.5}, {"qty", 4}},
                 {{"sku", "ink"}, {"price", 7.0}}}}};
  auto started = api->start(req);
  if (!started) {
    std::cerr << "start failed: " << ac::api_error_message(started.error())
              << "\n";
    return 1;
  }
  auto id = started->execution.execution_id;
  auto done = api->wait(id, 30s);
  int rc = 1;
  if (!done) {
    std::cerr << "wait failed: " << ac::api_error_message(done.error()) << "\n";
  } else {
    std::cout << "execution " << id << ": "
              << cerebelum::eventstore::to_string(done->status) << "\n"
              << "result " << done->result.dump() << "\n"
              << "history " << done->history_length << " events\n";
    auto expected = json{{"receipt", {{"total", 17.0}, {"charge_id", "ch-2"}}}};
    rc = done->result == expected ? 0 : 1;
    if (rc != 0)
      std::cerr << "unexpected result, wanted " << expected.dump() << "\n";
  }
  node->stop(10s);
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  auto def = make_workflow();
  if (!def) {
    std::cerr << "invalid workflow: " << def.error().to_string() << "\n";
    return 1;
  }
  std::filesystem::path dir;
  bool scratch = argc <= 1; // a data dir of our own, removed at the end
  if (!scratch) {
    dir = argv[1];
  } else {
    std::string tmpl
      = (std::filesystem::temp_directory_path() / "cerebelum-embedded.XXXXXX")
          .string();
    dir = ::mkdtemp(tmpl.data());
  }
  std::filesystem::create_directories(dir);
  caf::actor_system_config cfg;
  ac::add_node_message_types(cfg);
  int rc = 0;
  {
    caf::actor_system sys{cfg};
    rc = run(sys, dir, *def);
  }
  if (scratch) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}
