// A C++ worker for examples/caf_worker/invoice.yaml: joins a node over CAF
// networking, registers the workflow, and runs `invoice.price`,
// `invoice.tax` and `invoice.send` until SIGINT or SIGTERM (then it stops
// gracefully: running tasks finish and report first).
//
//   cerebelum node --caf-port 4300 &
//   caf_worker_example --port 4300 --id invoicer-1
//     --workflow examples/caf_worker/invoice.yaml &
//   cerebelum start caf_invoice --wait --input '{"items": [{"sku": "a",
//     "qty": 2, "price_cents": 150}], "tax_rate": 0.2, "work_ms": 0,
//     "send_after_ms": 0}'
//
// (each command on one line).
//
// Exit codes: 0 after a graceful stop, 1 when the node cannot be reached,
// refuses the registration or the connection is lost, 2 for usage errors.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include <pthread.h>

#include "sdk/cpp/caf_worker.hpp"

using cerebelum::worker::caf_worker;
using cerebelum::worker::json;
using cerebelum::worker::task_context;
using cerebelum::worker::task_error;

namespace {

/// Sums qty * price_cents over `input.items`; pretends to compute for
/// `input.work_ms` milliseconds, reporting progress and honouring
/// cancellation.
json price(const json& input, task_context& ctx) {
  if (!input.is_object() || !input.contains("items")
      || !input["items"].is_array())
    throw task_error{"invalid_input", "input.items must be a list", false};
  std::int64_t subtotal = 0;
  for (const auto& item : input["items"]) {
    if (!item.is_object() || !item.contains("qty")
        || !item["qty"].is_number_integer() || !item.contains("price_cents")
        || !item["price_cents"].is_number_integer())
      throw task_error{"invalid_item",
                       "every item needs integer qty and price_cents, got "
                         + item.dump(),
                       false};
    subtotal += item["qty"].get<std::int64_t>()
                * item["price_cents"].get<std::int64_t>();
  }
  auto work_ms = input.value("work_ms", json{}).is_number_integer()
                   ? input["work_ms"].get<std::int64_t>()
                   : 0;
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto next_report = start;
  for (;;) {
    auto done = std::chrono::duration_cast<std::chrono::milliseconds>(
                  clock::now() - start)
                  .count();
    if (done >= work_ms) break;
    if (ctx.cancel_requested())
      throw task_error{"cancelled", "pricing stopped on the node's request",
                       false};
    if (clock::now() >= next_report) {
      ctx.heartbeat({{"worked_ms", done}, {"of_ms", work_ms}});
      next_report += std::chrono::seconds{1};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return {{"subtotal", subtotal}, {"lines", input["items"].size()}};
}

/// tax = round(subtotal * rate), in cents.
json tax(const json& input, task_context&) {
  if (!input.is_object() || !input.contains("subtotal")
      || !input["subtotal"].is_number() || !input.contains("rate")
      || !input["rate"].is_number())
    throw task_error{"invalid_input", "tax needs numbers subtotal and rate",
                     false};
  auto rate = input["rate"].get<double>();
  if (rate < 0 || rate > 1)
    throw task_error{"invalid_rate",
                     "tax rate must be in [0, 1], got " + input["rate"].dump(),
                     false};
  auto t = std::llround(input["subtotal"].get<double>() * rate);
  return {{"tax", t}};
}

/// Waits `input.after_ms` durably inside the step (the node records the
/// sleep and runs the step again as a new attempt when it is over: this
/// process may even be gone by then), then "sends" the invoice.
json send(const json& input, task_context& ctx) {
  auto after_ms = input.value("after_ms", json{}).is_number_integer()
                    ? input["after_ms"].get<std::int64_t>()
                    : 0;
  ctx.sleep(std::chrono::milliseconds{after_ms}, "send-window");
  return {{"sent", true},
          {"total", input.value("total", json{})},
          {"attempt", ctx.attempt()}};
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Example C++ worker of Cerebelum (CAF networking)",
               "caf_worker_example"};
  cerebelum::worker::worker_options opts;
  opts.queues = {"cpp-invoices"};
  std::vector<std::string> workflows;
  app.add_option("--host", opts.host, "The node's host")->capture_default_str();
  app.add_option("--port", opts.port, "The node's CAF port (--caf-port)")
    ->required();
  app.add_option("--id", opts.worker_id, "Worker id, unique per process")
    ->required();
  app.add_option("--queue", opts.queues, "Queues to serve")
    ->capture_default_str();
  app.add_option("--max-in-flight", opts.max_in_flight, "Tasks run at once")
    ->check(CLI::Range(1, 1024))
    ->capture_default_str();
  long connect_ms = 10'000;
  app
    .add_option("--connect-timeout-ms", connect_ms,
                "How long to keep trying to reach the node")
    ->check(CLI::PositiveNumber)
    ->capture_default_str();
  app
    .add_option("--workflow", workflows,
                "Workflow files to register with the node")
    ->check(CLI::ExistingFile);
  std::string token_file;
  app.add_option("--token", opts.token,
                 "The worker's token on a node with --auth token (default: "
                 "$CEREBELUM_TOKEN; none: the principal bound to "
                 "--tls-cert's subject)");
  app
    .add_option("--token-file", token_file,
                "Read the token from this file (its first line)")
    ->check(CLI::ExistingFile);
  app.add_option("--tls-ca", opts.tls_ca,
                 "Connect with TLS, trusting this CA (PEM) for the node's "
                 "certificate");
  app.add_option("--tls-cert", opts.tls_cert,
                 "Client certificate (PEM); TLS on the CAF port needs one");
  app.add_option("--tls-key", opts.tls_key, "Private key of --tls-cert (PEM)");
  app.add_option("--tls-server-name", opts.tls_server_name,
                 "The name the node's certificate must carry (default: "
                 "--host)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  opts.connect_timeout = std::chrono::milliseconds{connect_ms};
  if (!token_file.empty()) {
    std::ifstream in{token_file};
    std::getline(in, opts.token);
  } else if (const char* env = std::getenv("CEREBELUM_TOKEN");
             opts.token.empty() && env != nullptr) {
    opts.token = env;
  }
  // Only the signal thread sees SIGINT/SIGTERM (CAF's threads inherit the
  // mask); SIGUSR2 tells it that main is done.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  try {
    caf_worker w{opts};
    for (auto& file : workflows)
      w.add_workflow_file(file);
    w.on("invoice.price", price)
      .on("invoice.tax", tax)
      .on("invoice.send", send);
    std::thread signals{[&] {
      int sig = 0;
      while (sigwait(&set, &sig) != 0) {
        // EINTR: keep waiting.
      }
      if (sig == SIGUSR2) return; // main is done
      spdlog::info("received {}, stopping",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      w.stop();
    }};
    int code = 0;
    try {
      w.run();
      spdlog::info("worker {} stopped ({} tasks completed)", opts.worker_id,
                   w.completed());
    } catch (const std::exception& e) {
      spdlog::error("worker {}: {}", opts.worker_id, e.what());
      code = 1;
    }
    pthread_kill(signals.native_handle(), SIGUSR2);
    signals.join();
    return code;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
