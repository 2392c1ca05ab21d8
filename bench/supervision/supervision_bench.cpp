// Cost of a simple_one_for_one child: time to start it (spawn + supervise),
// resident memory per child and time to stop it, against two raw-CAF floors
// that spawn the same child actor without a supervisor:
// - floor: the main thread spawns the children and sends them exits;
// - actor floor: one plain event-based actor spawns and monitors them and
//   sends them exits, as a supervisor does, but keeps no bookkeeping. Its
//   difference to "floor" is CAF's scheduling of work created inside an
//   actor (children land on one worker's queue and are stolen one by one).
//
// Usage: supervision_bench [--n N] [--json]
//   --n N      number of children (default 10000; try 100000)
//   --json     one JSON object instead of one line per figure
//
// Each mode runs in its own process (the program re-executes itself with
// --only floor|supervised) so that memory freed by one mode cannot be reused
// by the other and flatter its RSS figure.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "supervision/supervisor.hpp"

namespace sv = cerebelum::supervision;
using clock_type = std::chrono::steady_clock;

namespace {

/// The child of all modes: a tiny event-based actor. It takes an argument
/// because spawning a function actor without one trips UBSan inside CAF
/// 0.17.6.
caf::behavior child_actor(caf::event_based_actor*, int) {
  return {
    [](int x) {
      return x;
    },
  };
}

long rss_bytes() {
  long pages = 0;
  long resident = 0;
  if (auto f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

double micros_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0)
    .count();
}

struct figures {
  double start_us = 0; // per child
  double bytes = 0;    // per child
  double stop_us = 0;  // per child
};

/// Waits for `n` down messages.
void await_downs(caf::scoped_actor& self, size_t n) {
  for (size_t i = 0; i < n; ++i)
    self->receive([](const caf::down_msg&) {});
}

figures run_floor(caf::actor_system& sys, size_t n) {
  caf::scoped_actor self{sys};
  std::vector<caf::actor> children;
  children.reserve(n);
  auto rss0 = rss_bytes();
  auto t0 = clock_type::now();
  for (size_t i = 0; i < n; ++i)
    children.push_back(sys.spawn(child_actor, 0));
  figures result;
  result.start_us = micros_since(t0) / n;
  result.bytes = static_cast<double>(rss_bytes() - rss0) / n;
  for (auto& child : children)
    self->monitor(child);
  auto t1 = clock_type::now();
  for (auto& child : children)
    caf::anon_send_exit(child, caf::exit_reason::user_shutdown);
  await_downs(self, n);
  result.stop_us = micros_since(t1) / n;
  return result;
}

/// The actor floor's parent: spawns `n` children and monitors them on
/// (n), stops them all on (n, true) and answers once all are down.
caf::behavior plain_parent(caf::event_based_actor* self, int) {
  auto children = std::make_shared<std::vector<caf::actor>>();
  auto pending = std::make_shared<caf::response_promise>();
  auto left = std::make_shared<size_t>(0);
  self->set_down_handler([=](caf::down_msg&) {
    if (--*left == 0) pending->deliver(caf::unit);
  });
  return {
    [=](size_t n) {
      children->reserve(n);
      for (size_t i = 0; i < n; ++i) {
        children->push_back(self->system().spawn(child_actor, 0));
        self->monitor(children->back());
      }
      return n;
    },
    [=](size_t n, bool) -> caf::result<void> {
      *left = n;
      *pending = self->make_response_promise();
      for (auto& child : *children)
        self->send_exit(child, caf::exit_reason::user_shutdown);
      children->clear();
      return *pending;
    },
  };
}

figures run_actor_floor(caf::actor_system& sys, size_t n) {
  caf::scoped_actor self{sys};
  auto parent = sys.spawn(plain_parent, 0);
  auto rss0 = rss_bytes();
  auto t0 = clock_type::now();
  self->request(parent, caf::infinite, n)
    .receive([](size_t) {}, [](caf::error&) {});
  figures result;
  result.start_us = micros_since(t0) / n;
  result.bytes = static_cast<double>(rss_bytes() - rss0) / n;
  auto t1 = clock_type::now();
  self->request(parent, caf::infinite, n, true)
    .receive([] {}, [](caf::error&) {});
  result.stop_us = micros_since(t1) / n;
  caf::anon_send_exit(parent, caf::exit_reason::user_shutdown);
  return result;
}

figures run_supervised(caf::actor_system& sys, size_t n) {
  sv::child_spec spec;
  spec.id = "child";
  spec.restart = sv::restart_type::transient;
  spec.start = [](caf::actor_system& sys,
                  const caf::message&) -> caf::expected<caf::actor> {
    return sys.spawn(child_actor, 0);
  };
  sv::supervisor_config cfg;
  cfg.name = "bench_sup";
  cfg.flags.strategy = sv::restart_strategy::simple_one_for_one;
  cfg.children.push_back(std::move(spec));
  auto sup = sv::start_supervisor(sys, std::move(cfg));
  if (!sup) {
    std::fprintf(stderr, "cannot start the supervisor: %s\n",
                 sys.render(sup.error()).c_str());
    std::exit(EXIT_FAILURE);
  }
  caf::scoped_actor self{sys};
  auto rss0 = rss_bytes();
  auto t0 = clock_type::now();
  // Pipelined: all requests go out, then all replies (the child handles)
  // come back, as a busy executions supervisor would see them.
  for (size_t i = 0; i < n; ++i)
    self->send(*sup, sv::start_child_atom_v,
               caf::make_message(static_cast<int>(i)));
  std::vector<caf::actor> children;
  children.reserve(n);
  for (size_t i = 0; i < n; ++i)
    self->receive([&](caf::actor& child) {
      children.push_back(child);
    });
  figures result;
  result.start_us = micros_since(t0) / n;
  result.bytes = static_cast<double>(rss_bytes() - rss0) / n;
  children.clear(); // the supervisor keeps its own handles
  self->monitor(*sup);
  auto t1 = clock_type::now();
  caf::anon_send_exit(*sup, caf::exit_reason::user_shutdown);
  await_downs(self, 1);
  result.stop_us = micros_since(t1) / n;
  return result;
}

figures run_mode(const std::string& mode, size_t n) {
  caf::actor_system_config cfg;
  sv::add_supervision_types(cfg);
  caf::actor_system sys{cfg};
  if (mode == "floor") return run_floor(sys, n);
  if (mode == "actor_floor") return run_actor_floor(sys, n);
  return run_supervised(sys, n);
}

/// Runs `mode` in a fresh process and parses its figures.
figures spawn_mode(const char* self_exe, const std::string& mode, size_t n) {
  auto cmd = std::string{self_exe} + " --only " + mode + " --n "
             + std::to_string(n);
  figures result;
  auto pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr
      || std::fscanf(pipe, "%lf %lf %lf", &result.start_us, &result.bytes,
                     &result.stop_us)
           != 3) {
    std::fprintf(stderr, "mode %s failed\n", mode.c_str());
    std::exit(EXIT_FAILURE);
  }
  pclose(pipe);
  return result;
}

} // namespace

int main(int argc, char** argv) {
  size_t n = 10000;
  bool json = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc)
      n = std::strtoul(argv[++i], nullptr, 10);
    else if (std::strcmp(argv[i], "--json") == 0)
      json = true;
    else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      only = argv[++i];
  }
  if (n == 0) {
    std::fprintf(stderr, "usage: supervision_bench [--n N] [--json]\n");
    return EXIT_FAILURE;
  }
  if (!only.empty()) {
    // Figures go to stdout; the supervisor's info lines would mix in.
    spdlog::set_level(spdlog::level::warn);
    auto f = run_mode(only, n);
    std::printf("%.4f %.1f %.4f\n", f.start_us, f.bytes, f.stop_us);
    return EXIT_SUCCESS;
  }
  // popen runs a shell: resolve our own path first.
  char exe[4096] = {};
  if (readlink("/proc/self/exe", exe, sizeof(exe) - 1) <= 0) {
    std::fprintf(stderr, "cannot resolve /proc/self/exe\n");
    return EXIT_FAILURE;
  }
  auto floor = spawn_mode(exe, "floor", n);
  auto actor_floor = spawn_mode(exe, "actor_floor", n);
  auto sup = spawn_mode(exe, "supervised", n);
  if (json) {
    std::printf(
      "{\"children\": %zu, \"start_us\": %.3f, \"floor_start_us\": %.3f, "
      "\"actor_floor_start_us\": %.3f, \"start_ratio\": %.2f, "
      "\"bytes\": %.0f, \"floor_bytes\": %.0f, \"actor_floor_bytes\": %.0f, "
      "\"bytes_ratio\": %.2f, \"stop_us\": %.3f, \"floor_stop_us\": %.3f, "
      "\"actor_floor_stop_us\": %.3f, \"stop_ratio\": %.2f}\n",
      n, sup.start_us, floor.start_us, actor_floor.start_us,
      sup.start_us / floor.start_us, sup.bytes, floor.bytes, actor_floor.bytes,
      sup.bytes / floor.bytes, sup.stop_us, floor.stop_us, actor_floor.stop_us,
      sup.stop_us / floor.stop_us);
    return EXIT_SUCCESS;
  }
  auto line = [](const char* what, const char* unit, double sup, double floor,
                 double actor_floor) {
    std::printf("%s: %.3f %s (floor %.3f, x%.2f; actor floor %.3f, x%.2f)\n",
                what, sup, unit, floor, sup / floor, actor_floor,
                sup / actor_floor);
  };
  std::printf("children: %zu\n", n);
  line("start (spawn + supervise)", "us/child", sup.start_us, floor.start_us,
       actor_floor.start_us);
  line("memory", "bytes/child", sup.bytes, floor.bytes, actor_floor.bytes);
  line("stop", "us/child", sup.stop_us, floor.stop_us, actor_floor.stop_us);
  return EXIT_SUCCESS;
}
