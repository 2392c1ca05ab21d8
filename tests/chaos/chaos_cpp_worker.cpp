// The chaos suite's C++ worker: joins a node over CAF networking, serves the
// `chaos-cpp` queue (cpp.quote, cpp.sum, cpp.book) and appends one
// side-effect line per step run to a log, before and after the step's work
// (the same shape as tests/chaos/chaos_py_worker.py):
//
//   {"w": worker, "e": execution, "s": step, "a": attempt, "i": -1,
//    "ev": "start" | "done", "t": unix seconds}
//
//   chaos_cpp_worker --port CAF_PORT --id cpp-1 --log FILE
//
// Exit codes: 0 after SIGTERM, 1 when the node cannot be reached or the
// connection is lost (the chaos harness starts it again), 2 usage errors.

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <random>
#include <string>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "sdk/cpp/caf_worker.hpp"

using cerebelum::worker::caf_worker;
using cerebelum::worker::json;
using cerebelum::worker::task_context;
using cerebelum::worker::task_error;

namespace {

int log_fd = -1;
std::string worker_id;

/// Appends one side-effect line with a single O_APPEND write.
void effect(const task_context& ctx, const char* ev) {
  auto now = std::chrono::duration<double>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  json line = {{"w", worker_id},  {"e", ctx.execution_id()},
               {"s", ctx.step()}, {"a", ctx.attempt()},
               {"i", -1},         {"ev", ev},
               {"t", now}};
  auto text = line.dump() + "\n";
  if (::write(log_fd, text.data(), text.size())
      != static_cast<ssize_t>(text.size()))
    spdlog::error("cannot write the side-effect log");
}

/// Pretends to work for 50-400 ms, long enough for faults to land.
void work() {
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> ms{50, 400};
  std::this_thread::sleep_for(std::chrono::milliseconds{ms(rng)});
}

std::int64_t int_field(const json& input, const char* key) {
  auto i = input.find(key);
  if (!input.is_object() || i == input.end() || !i->is_number_integer())
    throw task_error{"invalid_input", std::string{key} + " must be an integer",
                     false};
  return i->get<std::int64_t>();
}

json quote(const json& input, task_context& ctx) {
  effect(ctx, "start");
  auto amount = int_field(input, "amount");
  work();
  effect(ctx, "done");
  return {{"price", 3 * amount}};
}

json sum(const json& input, task_context& ctx) {
  effect(ctx, "start");
  if (!input.is_object() || !input.contains("xs") || !input["xs"].is_array())
    throw task_error{"invalid_input", "xs must be a list", false};
  std::int64_t total = 0;
  for (const auto& x : input["xs"]) {
    if (!x.is_number_integer())
      throw task_error{"invalid_input", "xs holds a non-integer", false};
    total += x.get<std::int64_t>();
  }
  work();
  effect(ctx, "done");
  return {{"sum", total}};
}

/// Sleeps durably inside the step before booking: the first attempt ends
/// suspended, the node runs the step again after 300 ms.
json book(const json& input, task_context& ctx) {
  effect(ctx, "start");
  int_field(input, "price");
  work();
  effect(ctx, "done");
  ctx.sleep(std::chrono::milliseconds{300}, "book-window");
  return {{"booked", true}};
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"The chaos suite's C++ worker", "chaos_cpp_worker"};
  cerebelum::worker::worker_options opts;
  opts.queues = {"chaos-cpp"};
  opts.max_in_flight = 4;
  std::string log_file;
  app.add_option("--port", opts.port, "The node's CAF port")->required();
  app.add_option("--id", opts.worker_id, "Worker id")->required();
  app.add_option("--log", log_file, "Side-effect log file")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  worker_id = opts.worker_id;
  opts.connect_timeout = std::chrono::milliseconds{3'000};
  log_fd = ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log_fd < 0) {
    spdlog::error("cannot open {}", log_file);
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int code = 0;
  try {
    caf_worker w{opts};
    w.on("cpp.quote", quote).on("cpp.sum", sum).on("cpp.book", book);
    std::thread signals{[&] {
      int sig = 0;
      while (sigwait(&set, &sig) != 0) {
      }
      if (sig != SIGUSR2) w.stop();
    }};
    try {
      w.run();
    } catch (const std::exception& e) {
      spdlog::error("worker {}: {}", opts.worker_id, e.what());
      code = 1;
    }
    pthread_kill(signals.native_handle(), SIGUSR2);
    signals.join();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    code = 1;
  }
  return code;
}
