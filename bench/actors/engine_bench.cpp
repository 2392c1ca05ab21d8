// Engine benchmark: an in-process node on SQLite with durable commits.
//
//   engine_bench [--json] [--quick] [--sleepers N] [--only WHAT]
//                [--executions N] [--inflight C] [--functions actor|pool]
//                [--no-ceiling] [--linger-us N] [--rounds R]
//
// WHAT (repeatable): tp64, tp1, sleep, boot. --executions and --inflight
// replace the throughput runs by one run of N executions with C in flight,
// of the functions --functions names (both when not given).
//
// Figures: a 3-step workflow of native calls (n = i+1, n*2, n+3; each step's
// result committed before the next starts), its functions registered to
// run on the execution's actor (run_on::actor) and, apart, on the call
// pool (run_on::pool), with 64 and with 1 execution in flight
// (executions/s, latency p50/p99 from start to result); 1,000
// executions sleeping 2 s at once (wake-up lateness p50/p99 = recorded
// timer_fired time - due time); boot with N passivated sleepers (node start
// + resurrection time) and the node's memory per passivated execution.
//
// Each throughput run is followed by the store's ceiling on the same
// machine a moment later: the appends the engine made for one execution
// (recorded from a warm-up execution), written for as many fresh
// executions by as many appender threads as there were executions in
// flight, one append after the other, each awaited, through the node's
// group writer on a fresh SQLite store with the same options, and no
// engine code. The engine's figure is printed as a ratio to it
// (--no-ceiling leaves it out, for profiling the engine alone). The ceiling
// is the better of two runs: with the node's writer options and with the
// event store's default linger (1 ms, which suits appenders in a loop).
// --linger-us sets the node's writer linger (experiments). --rounds R
// alternates R engine runs and R ceilings (the disk's commit time swings
// from minute to minute) and prints the ratio of their medians.

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "actors/node.hpp"
#include "bench/actors/engine_bench_setup.hpp"
#include "eventstore/group_writer.hpp"
#include "eventstore/sqlite_store.hpp"
#include "eventstore/store_decorator.hpp"

namespace fs = std::filesystem;
using namespace cerebelum;
using clock_type = std::chrono::steady_clock;

namespace {

struct figure {
  std::string name;
  double value;
  std::string unit;
};

std::vector<figure> figures;
bool as_json = false;
/// Whether each throughput run is followed by the store's ceiling.
bool with_ceiling = true;
/// Rounds of each throughput figure (--rounds).
std::size_t rounds = 1;
/// The node's writer linger (--linger-us), if not its default.
std::optional<long> linger_us;

void report(std::string name, double value, std::string unit) {
  if (!as_json) std::printf("%s: %.2f %s\n", name.c_str(), value, unit.c_str());
  std::fflush(stdout);
  figures.push_back({std::move(name), value, std::move(unit)});
}

double percentile(std::vector<double> xs, double p) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  auto idx = static_cast<std::size_t>(p * static_cast<double>(xs.size() - 1));
  return xs[idx];
}

fs::path fresh_dir(const std::string& tag) {
  std::random_device rd;
  auto dir = fs::temp_directory_path()
             / ("cerebelum-bench-" + tag + "-" + std::to_string(rd()));
  fs::create_directories(dir);
  bench::write_bench_workflows(dir / "workflows");
  return dir;
}

/// Records the appends made while `recording` is set.
class recording_store : public eventstore::store_decorator {
 public:
  using store_decorator::store_decorator;

  std::vector<eventstore::append_result>
  append_batch(std::span<const eventstore::append_request> reqs) override {
    if (recording.load()) {
      std::lock_guard<std::mutex> guard{mtx};
      for (const auto& r : reqs)
        appends.push_back(r);
    }
    return store_decorator::append_batch(reqs);
  }

  std::atomic<bool> recording{false};
  std::mutex mtx;
  std::vector<eventstore::append_request> appends;
};

actors::node start_node(caf::actor_system& sys, const fs::path& dir,
                        std::shared_ptr<recording_store>* recorder = nullptr) {
  actors::node_config cfg;
  if (recorder != nullptr)
    cfg.wrap_store = [recorder](std::shared_ptr<eventstore::event_store> s) {
      *recorder = std::make_shared<recording_store>(std::move(s));
      return std::static_pointer_cast<eventstore::event_store>(*recorder);
    };
  cfg.data_dir = dir;
  cfg.workflows_dir = dir / "workflows";
  cfg.functions = bench::bench_functions();
  if (linger_us) cfg.writer.max_linger = std::chrono::microseconds{*linger_us};
  auto n = actors::node::start(sys, cfg);
  if (!n) {
    std::fprintf(stderr, "node: %s\n", sys.render(n.error()).c_str());
    std::exit(1);
  }
  return std::move(*n);
}

template <class F>
void parallel(std::size_t threads, std::size_t n, F fn) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> ts;
  for (std::size_t t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (auto i = next++; i < n; i = next++)
        fn(i);
    });
  for (auto& t : ts)
    t.join();
}

/// One 3-step execution started and awaited; whether its result is right.
bool run_one(actors::engine_api& api, const std::string& workflow, int i) {
  actors::start_request req{workflow, actors::json{{"i", i}}, {}, "bench"};
  auto started = api.start(req);
  if (!started) return false;
  auto done = api.wait(started->execution.execution_id,
                       std::chrono::seconds{60});
  return done && done->result == actors::json{{"n", (i + 1) * 2 + 3}};
}

/// The store's ceiling for `n` executions whose appends are `appends` (one
/// execution's, in order), `inflight` appender threads: executions/s.
double store_ceiling(const std::vector<eventstore::append_request>& appends,
                     std::size_t n, std::size_t inflight,
                     const eventstore::writer_options& options) {
  auto dir = fresh_dir("ceiling");
  eventstore::sqlite_options opts;
  opts.data_dir = dir.string();
  auto store = eventstore::open_sqlite_store(opts);
  if (!store) {
    std::fprintf(stderr, "ceiling: %s\n",
                 eventstore::to_string(store.err()).c_str());
    std::exit(1);
  }
  std::atomic<std::size_t> failed{0};
  double secs = 0;
  {
    eventstore::group_writer writer{std::move(*store), options};
    auto t0 = clock_type::now();
    parallel(inflight, n, [&](std::size_t i) {
      auto id = "ceiling-" + std::to_string(i);
      for (const auto& a : appends) {
        auto req = a;
        req.execution_id = id;
        if (!writer.append_and_wait(std::move(req))) ++failed;
      }
    });
    secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  }
  fs::remove_all(dir);
  if (failed > 0) {
    std::fprintf(stderr, "ceiling: %zu appends failed\n", failed.load());
    std::exit(1);
  }
  return static_cast<double>(n) / secs;
}

/// One engine run: `n` executions of `workflow`, `inflight` at a time, on a
/// fresh node. Returns executions/s; `lat` gets each latency (ms), `appends`
/// one execution's appends (recorded from a warm-up execution).
double engine_run(caf::actor_system& sys, std::size_t n, std::size_t inflight,
                  const std::string& workflow, std::vector<double>& lat,
                  std::vector<eventstore::append_request>& appends,
                  std::atomic<std::size_t>& wrong) {
  auto dir = fresh_dir("tp");
  std::shared_ptr<recording_store> recorder;
  auto node = start_node(sys, dir, &recorder);
  auto api = node.api();
  // Two warm-up executions; the second one's appends are the ceiling's
  // (the first also stores the workflow's definition).
  run_one(*api, workflow, 0);
  recorder->recording = true;
  run_one(*api, workflow, 1);
  recorder->recording = false;
  {
    std::lock_guard<std::mutex> guard{recorder->mtx};
    appends = recorder->appends;
  }
  lat.assign(n, 0.0);
  auto t0 = clock_type::now();
  parallel(inflight, n, [&](std::size_t i) {
    auto s = clock_type::now();
    if (!run_one(*api, workflow, static_cast<int>(i))) ++wrong;
    lat[i] = std::chrono::duration<double, std::milli>(clock_type::now() - s)
               .count();
  });
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  node.stop(std::chrono::seconds{30});
  fs::remove_all(dir);
  return static_cast<double>(n) / secs;
}

double median(std::vector<double> xs) {
  return percentile(std::move(xs), 0.5);
}

/// `rounds` rounds of an engine run, then the store's ceiling (the better
/// of two lingers), alternated because the disk's commit time swings from
/// minute to minute; the ratio is the one of their medians.
void throughput(caf::actor_system& sys, std::size_t n, std::size_t inflight,
                const std::string& workflow) {
  auto tag = "3-step, " + std::to_string(inflight) + " in flight, functions on "
             + (workflow == "three_steps" ? "the actor" : "the call pool");
  std::vector<double> rates;
  std::vector<double> ceilings;
  std::vector<double> lat;
  std::vector<double> all_lat;
  std::vector<eventstore::append_request> appends;
  std::atomic<std::size_t> wrong{0};
  for (std::size_t r = 0; r < rounds; ++r) {
    rates.push_back(
      engine_run(sys, n, inflight, workflow, lat, appends, wrong));
    all_lat.insert(all_lat.end(), lat.begin(), lat.end());
    auto round = rounds > 1 ? " (round " + std::to_string(r + 1) + ")" : "";
    report(tag + ", executions/s" + round, rates.back(), "exec/s");
    if (!with_ceiling) continue;
    ceilings.push_back(std::max(
      store_ceiling(appends, n, inflight, actors::node_config{}.writer),
      store_ceiling(appends, n, inflight, eventstore::writer_options{})));
    report(tag + ", store ceiling" + round + " (the same "
             + std::to_string(appends.size())
             + " appends per execution, no engine; the better of two "
               "lingers)",
           ceilings.back(), "exec/s");
  }
  if (rounds > 1)
    report(tag + ", executions/s, median", median(rates), "exec/s");
  report(tag + ", latency p50", percentile(all_lat, 0.50), "ms");
  report(tag + ", latency p99", percentile(all_lat, 0.99), "ms");
  if (wrong > 0) report(tag + ", WRONG RESULTS", double(wrong), "executions");
  if (!with_ceiling) return;
  if (rounds > 1)
    report(tag + ", store ceiling, median", median(ceilings), "exec/s");
  report(tag + ", engine / store ceiling" + (rounds > 1 ? " (medians)" : ""),
         100.0 * median(rates) / median(ceilings), "%");
}

void sleep_lateness(caf::actor_system& sys, std::size_t n) {
  auto dir = fresh_dir("sleep");
  auto node = start_node(sys, dir);
  auto api = node.api();
  std::vector<std::string> ids(n);
  parallel(16, n, [&](std::size_t i) {
    auto r = api->start({"nap", actors::json{{"ms", 2000}}, {}, "bench"});
    if (r) ids[i] = r->execution.execution_id;
  });
  std::vector<double> late;
  std::mutex mtx;
  parallel(16, n, [&](std::size_t i) {
    if (ids[i].empty() || !api->wait(ids[i], std::chrono::seconds{60})) return;
    auto hist = api->history(ids[i], 0);
    if (!hist) return;
    std::int64_t due = 0;
    std::int64_t fired = 0;
    for (auto& ev : *hist) {
      if (ev.has_timer_started()) due = ev.timer_started().fire_at_ms();
      if (ev.has_timer_fired()) fired = ev.timer_fired().fired_at_ms();
    }
    std::lock_guard<std::mutex> guard{mtx};
    late.push_back(static_cast<double>(fired - due));
  });
  report(std::to_string(n) + " x sleep 2 s, completed", double(late.size()),
         "executions");
  report(std::to_string(n) + " x sleep 2 s, lateness p50",
         percentile(late, 0.50), "ms");
  report(std::to_string(n) + " x sleep 2 s, lateness p99",
         percentile(late, 0.99), "ms");
  node.stop(std::chrono::seconds{30});
  fs::remove_all(dir);
}

double boot(caf::actor_system& sys, const fs::path& dir, std::size_t& rss) {
  auto t0 = clock_type::now();
  auto node = start_node(sys, dir);
  while (!node.resurrection_time())
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  auto ms
    = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  rss = bench::rss_bytes();
  node.stop(std::chrono::seconds{30});
  return ms;
}

void resurrection(caf::actor_system& sys, std::size_t n) {
  auto full = fresh_dir("boot");
  auto created = bench::create_sleepers(full, full / "workflows", n, 3'600'000);
  auto empty = fresh_dir("empty");
  std::size_t rss_empty = 0;
  std::size_t rss_full = 0;
  boot(sys, empty, rss_empty);
  auto ms = boot(sys, full, rss_full);
  auto tag = std::to_string(created) + " sleepers";
  report("boot with " + tag + " (start + resurrection)", ms, "ms");
  auto delta = rss_full > rss_empty ? double(rss_full - rss_empty) : 0.0;
  report("memory per passivated execution (" + tag + ")",
         delta / static_cast<double>(created), "bytes");
  fs::remove_all(full);
  fs::remove_all(empty);
}

} // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::size_t sleepers = 100'000;
  std::size_t executions = 0;
  std::size_t inflight = 0;
  std::vector<std::string> only;
  std::vector<std::string> workflows{"three_steps", "three_steps_pool"};
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) {
      return std::strcmp(argv[i], name) == 0 && i + 1 < argc;
    };
    if (std::strcmp(argv[i], "--json") == 0) {
      as_json = true;
    } else if (arg("--rounds")) {
      rounds = std::max<std::size_t>(1, std::stoul(argv[++i]));
    } else if (arg("--linger-us")) {
      linger_us = std::stol(argv[++i]);
    } else if (std::strcmp(argv[i], "--no-ceiling") == 0) {
      with_ceiling = false;
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (arg("--sleepers")) {
      sleepers = std::stoul(argv[++i]);
    } else if (arg("--only")) {
      only.emplace_back(argv[++i]);
    } else if (arg("--executions")) {
      executions = std::stoul(argv[++i]);
    } else if (arg("--inflight")) {
      inflight = std::stoul(argv[++i]);
    } else if (arg("--functions")) {
      std::string where = argv[++i];
      if (where != "actor" && where != "pool") {
        std::fprintf(stderr, "engine_bench: --functions actor or pool\n");
        return 2;
      }
      workflows = {where == "actor" ? "three_steps" : "three_steps_pool"};
    } else {
      std::fprintf(stderr, "engine_bench: unknown or incomplete option %s\n",
                   argv[i]);
      return 2;
    }
  }
  bool custom = executions > 0 || inflight > 0;
  auto wanted = [&](const char* what) {
    return (only.empty() && !custom)
           || std::find(only.begin(), only.end(), what) != only.end();
  };
  spdlog::set_level(spdlog::level::warn);
  caf::actor_system_config cfg;
  actors::add_node_message_types(cfg);
  caf::actor_system sys{cfg};
  if (custom) {
    for (const auto& w : workflows)
      throughput(sys, executions > 0 ? executions : 1000,
                 inflight > 0 ? inflight : 64, w);
  } else {
    for (const auto& w : workflows) {
      if (wanted("tp64")) throughput(sys, quick ? 500 : 5000, 64, w);
      if (wanted("tp1")) throughput(sys, quick ? 100 : 1000, 1, w);
    }
  }
  if (wanted("sleep")) sleep_lateness(sys, 1000);
  if (wanted("boot")) resurrection(sys, quick ? 10'000 : sleepers);
  if (as_json) {
    std::printf("[");
    for (std::size_t i = 0; i < figures.size(); ++i)
      std::printf("%s{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}",
                  i ? ", " : "", figures[i].name.c_str(), figures[i].value,
                  figures[i].unit.c_str());
    std::printf("]\n");
  }
  return 0;
}
