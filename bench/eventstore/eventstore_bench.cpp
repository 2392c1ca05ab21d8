// eventstore_bench: the event store's throughput, latency and read-back
// figures on each backend, against the raw floor of the same run.
//
//   eventstore_bench [--backend sqlite|pg|both] [--pg CONNINFO]
//                    [--data-dir DIR] [--seconds S] [--quick] [--json]
//
// The PostgreSQL connection string comes from --pg, else CEREBELUM_BENCH_PG,
// else CEREBELUM_TEST_PG (start one with scripts/pg-throwaway.sh start DIR).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>
#include <unistd.h>

#include "bench/eventstore/bench_floor.hpp"
#include "eventstore/group_writer.hpp"
#include "eventstore/pg_store.hpp"
#include "eventstore/sqlite_store.hpp"

using namespace cerebelum::eventstore;
using namespace cerebelum::eventstore::bench;
using clock_type = std::chrono::steady_clock;

namespace {

struct config {
  std::string backend = "both";
  std::string pg;
  std::string data_dir;
  double seconds = 5;
  std::size_t read_executions = 100'000;
  std::size_t read_events = 10;
  bool json = false;
};

/// One printed figure.
struct figure {
  std::string backend;
  std::string name;
  double value = 0;
  std::string unit;
  double p50_ms = -1;
  double p99_ms = -1;
  double ratio = -1;
  double avg_group = -1;
};

std::vector<figure> figures;

void report(const config& cfg, figure f) {
  std::printf("[%s] %s: %.0f %s", f.backend.c_str(), f.name.c_str(), f.value,
              f.unit.c_str());
  if (f.p50_ms >= 0)
    std::printf(", p50 %.2f ms, p99 %.2f ms", f.p50_ms, f.p99_ms);
  if (f.ratio >= 0) std::printf(", %.0f%% of the floor", f.ratio * 100);
  if (f.avg_group >= 0) std::printf(" (avg group %.0f appends)", f.avg_group);
  std::printf("\n");
  std::fflush(stdout);
  (void)cfg;
  figures.push_back(std::move(f));
}

/// The result of one concurrency level.
struct store_run {
  double events_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  std::uint64_t errors = 0;
  double avg_group = 0;
};

/// Appender `i` of a run: its execution and next sequence number.
struct appender {
  std::string id;
  std::int64_t next = 0;
  clock_type::time_point sent;
};

append_request bench_append(const appender& a, std::size_t n) {
  append_request req;
  req.execution_id = a.id;
  req.expected_next_seq = a.next;
  req.events.push_back({4, bench_payload(n), 0});
  req.index.workflow = "bench";
  req.index.phase = "step";
  req.index.created_at_ms = 1;
  req.index.updated_at_ms = a.next;
  return req;
}

/// Appenders whose ack arrived and whose next append is due; drained by the
/// "scheduler" threads, as CAF's scheduler runs execution actors: the
/// writer's callback only enqueues, the request is built elsewhere.
class ready_queue {
 public:
  void push(std::size_t i) {
    bool was_empty = false;
    {
      std::lock_guard guard{mtx_};
      was_empty = items_.empty();
      items_.push_back(i);
    }
    // Like a mailbox: wake a scheduler thread only when work appears.
    if (was_empty) cv_.notify_one();
  }

  /// Pops the next ready appender; `std::nullopt` once stopped.
  std::optional<std::size_t> pop() {
    std::unique_lock lock{mtx_};
    cv_.wait(lock, [this] {
      return stopped_ || !items_.empty();
    });
    if (stopped_) return std::nullopt;
    auto i = items_.front();
    items_.pop_front();
    return i;
  }

  void stop() {
    {
      std::lock_guard guard{mtx_};
      stopped_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::size_t> items_;
  bool stopped_ = false;
};

/// `concurrency` appenders, each waiting for its ack before its next append,
/// for `seconds`. Two scheduler threads build and submit the appends.
store_run run_store(std::shared_ptr<event_store> store, std::size_t concurrency,
                    double seconds, const std::string& tag) {
  group_writer writer{store};
  std::vector<appender> apps(concurrency);
  for (std::size_t i = 0; i < concurrency; ++i)
    apps[i].id = tag + "-" + std::to_string(i);
  std::vector<double> latencies; // touched by the writer thread only
  latencies.reserve(4'000'000);
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> errors{0};
  ready_queue ready;
  auto send = [&](std::size_t i) {
    apps[i].sent = clock_type::now();
    auto st = writer.submit(bench_append(apps[i], i), [&, i](append_result r) {
      if (!r.ok()) {
        ++errors;
        return;
      }
      std::chrono::duration<double, std::milli> ms = clock_type::now()
                                                     - apps[i].sent;
      latencies.push_back(ms.count());
      apps[i].next = r->next_seq;
      ++acked;
      ready.push(i);
    });
    if (st != submit_status::accepted) ++errors;
  };
  auto start = clock_type::now();
  for (std::size_t i = 0; i < concurrency; ++i)
    ready.push(i);
  std::vector<std::thread> scheduler;
  for (int t = 0; t < 2; ++t)
    scheduler.emplace_back([&] {
      while (auto i = ready.pop())
        send(*i);
    });
  std::this_thread::sleep_for(std::chrono::duration<double>{seconds});
  auto done = acked.load();
  std::chrono::duration<double> elapsed = clock_type::now() - start;
  ready.stop();
  for (auto& th : scheduler)
    th.join();
  writer.close();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    return latencies.empty()
             ? 0.0
             : latencies[static_cast<std::size_t>(q * (latencies.size() - 1))];
  };
  auto stats = writer.stats();
  return {static_cast<double>(done) / elapsed.count(), pct(0.5), pct(0.99),
          errors.load(),
          static_cast<double>(stats.appends)
            / static_cast<double>(std::max<std::uint64_t>(stats.groups, 1))};
}

/// Loads `executions` × `events` through the writer, then reads every
/// history back with 4 threads; returns rows per second of the read.
double read_back(std::shared_ptr<event_store> store, std::size_t executions,
                 std::size_t events) {
  {
    group_writer writer{store};
    std::atomic<std::uint64_t> failed{0};
    for (std::size_t i = 0; i < executions; ++i) {
      appender a{"read-" + std::to_string(i), 0, {}};
      auto req = bench_append(a, i);
      for (std::size_t e = 1; e < events; ++e)
        req.events.push_back({4, bench_payload(i + e), 0});
      if (writer.submit(std::move(req),
                        [&](append_result r) {
                          failed += !r.ok();
                        })
          != submit_status::accepted)
        ++failed;
    }
    writer.close();
    if (failed > 0)
      std::fprintf(stderr, "read-back load: %llu appends failed\n",
                   static_cast<unsigned long long>(failed.load()));
  }
  constexpr std::size_t readers = 4;
  std::atomic<std::uint64_t> rows{0};
  auto start = clock_type::now();
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < readers; ++t)
    threads.emplace_back([&, t] {
      std::uint64_t n = 0;
      for (std::size_t i = t; i < executions; i += readers) {
        auto res = store->read("read-" + std::to_string(i), 0,
                               [&](const stored_event&) {
                                 ++n;
                                 return true;
                               });
        if (!res.ok())
          std::fprintf(stderr, "read failed: %s\n",
                       to_string(res.err()).c_str());
      }
      rows += n;
    });
  for (auto& th : threads)
    th.join();
  std::chrono::duration<double> secs = clock_type::now() - start;
  if (rows != executions * events)
    std::fprintf(stderr, "read-back: %llu rows instead of %zu\n",
                 static_cast<unsigned long long>(rows.load()),
                 executions * events);
  return static_cast<double>(rows) / secs.count();
}

template <class T>
std::shared_ptr<event_store> must(result<T> res) {
  if (!res.ok()) {
    std::fprintf(stderr, "cannot open store: %s\n",
                 to_string(res.err()).c_str());
    std::exit(1);
  }
  return *res;
}

/// How the benchmark drives one backend.
struct backend_ops {
  std::string name;
  std::string floor_how;
  std::function<std::shared_ptr<event_store>()> open_store;
  std::function<double(const floor_shape&)> floor;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// The figures of one backend. The machine is shared and noisy, so the
/// floor and the 1,024-appender run alternate `rounds` times and the ratio
/// is the one of their medians.
void run_backend(const config& cfg, const backend_ops& ops) {
  constexpr int rounds = 3;
  auto store = ops.open_store();
  std::vector<double> floors;
  std::vector<double> index_floors;
  std::vector<store_run> runs;
  for (int r = 0; r < rounds; ++r) {
    auto tag = "r" + std::to_string(r);
    floors.push_back(ops.floor({1024, 1024, cfg.seconds, "floor" + tag}));
    index_floors.push_back(
      ops.floor({1024, 1024, cfg.seconds, "floorix" + tag, true}));
    runs.push_back(run_store(store, 1024, cfg.seconds, "c1024" + tag));
  }
  auto fresh = ops.floor({1024, 0, cfg.seconds, "fresh"});
  auto floor = median(floors);
  auto index_floor = median(index_floors);
  std::sort(runs.begin(), runs.end(), [](const auto& x, const auto& y) {
    return x.events_per_s < y.events_per_s;
  });
  report(cfg, {ops.name,
               "floor, same rows (" + ops.floor_how
                 + ", 1024 rows/txn, median of 3)",
               floor, "rows/s"});
  report(cfg, {ops.name,
               "floor, same rows + their index rows (raw SQL, median of 3)",
               index_floor, "events/s"});
  report(cfg, {ops.name, "floor, fresh keys (" + ops.floor_how + ")", fresh,
               "rows/s"});
  for (std::size_t c : {1, 64, 1024}) {
    auto run = c == 1024
                 ? runs[rounds / 2]
                 : run_store(store, c, cfg.seconds, "c" + std::to_string(c));
    if (run.errors > 0)
      std::fprintf(stderr, "[%s] %llu appends failed\n", ops.name.c_str(),
                   static_cast<unsigned long long>(run.errors));
    report(cfg, {ops.name,
                 "store, " + std::to_string(c) + " appenders"
                   + (c == 1024 ? " (median of 3)" : ""),
                 run.events_per_s, "events/s", run.p50_ms, run.p99_ms,
                 run.events_per_s / floor, run.avg_group});
  }
  report(cfg, {ops.name, "store at 1024 appenders / floor with index rows",
               100 * runs[rounds / 2].events_per_s / index_floor, "%"});
  auto rate = read_back(store, cfg.read_executions, cfg.read_events);
  report(cfg,
         {ops.name,
          "read-back (" + std::to_string(cfg.read_executions) + " executions x "
            + std::to_string(cfg.read_events) + " events)",
          rate, "rows/s"});
}

void run_sqlite(const config& cfg) {
  auto dir = cfg.data_dir.empty()
               ? "/tmp/cerebelum-bench-" + std::to_string(::getpid())
               : cfg.data_dir;
  std::filesystem::remove_all(dir);
  sqlite_options floor_opts;
  floor_opts.data_dir = dir + "/floor";
  must(open_sqlite_store(floor_opts)); // the same schema, empty
  sqlite_options opts;
  opts.data_dir = dir + "/store";
  run_backend(cfg, {"sqlite", "batched insert",
                    [&] {
                      return must(open_sqlite_store(opts));
                    },
                    [&](const floor_shape& shape) {
                      return sqlite_floor(floor_opts.data_dir, shape);
                    }});
  std::filesystem::remove_all(dir);
}

void drop_schema(const std::string& conninfo, const std::string& schema) {
  pqxx::connection conn{conninfo};
  pqxx::nontransaction tx{conn};
  tx.exec0("DROP SCHEMA IF EXISTS " + tx.quote_name(schema) + " CASCADE");
}

void run_pg(const config& cfg) {
  auto suffix = std::to_string(::getpid());
  pg_options floor_opts;
  floor_opts.conninfo = cfg.pg;
  floor_opts.schema = "bench_floor_" + suffix;
  must(open_pg_store(floor_opts)); // the same schema, empty
  pg_options opts;
  opts.conninfo = cfg.pg;
  opts.schema = "bench_store_" + suffix;
  run_backend(cfg, {"pg", "COPY",
                    [&] {
                      return must(open_pg_store(opts));
                    },
                    [&](const floor_shape& shape) {
                      return pg_floor(cfg.pg, floor_opts.schema, shape);
                    }});
  drop_schema(cfg.pg, floor_opts.schema);
  drop_schema(cfg.pg, opts.schema);
}

config parse(int argc, char** argv) {
  config cfg;
  for (const char* env : {"CEREBELUM_BENCH_PG", "CEREBELUM_TEST_PG"})
    if (const char* v = std::getenv(env); cfg.pg.empty() && v != nullptr)
      cfg.pg = v;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] {
      return i + 1 < argc ? std::string{argv[++i]} : "";
    };
    if (arg == "--backend")
      cfg.backend = next();
    else if (arg == "--pg")
      cfg.pg = next();
    else if (arg == "--data-dir")
      cfg.data_dir = next();
    else if (arg == "--seconds")
      cfg.seconds = std::stod(next());
    else if (arg == "--json")
      cfg.json = true;
    else if (arg == "--quick") {
      cfg.seconds = 1;
      cfg.read_executions = 10'000;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--backend sqlite|pg|both] [--pg CONN] "
                   "[--data-dir DIR] [--seconds S] [--quick] "
                   "[--json]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  return cfg;
}

void print_json() {
  std::printf("[");
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const auto& f = figures[i];
    std::printf("%s\n  {\"backend\": \"%s\", \"figure\": \"%s\", "
                "\"value\": %.1f, \"unit\": \"%s\"",
                i > 0 ? "," : "", f.backend.c_str(), f.name.c_str(), f.value,
                f.unit.c_str());
    if (f.p50_ms >= 0)
      std::printf(", \"p50_ms\": %.3f, \"p99_ms\": %.3f", f.p50_ms, f.p99_ms);
    if (f.ratio >= 0) std::printf(", \"ratio_to_floor\": %.3f", f.ratio);
    if (f.avg_group >= 0) std::printf(", \"avg_group\": %.1f", f.avg_group);
    std::printf("}");
  }
  std::printf("\n]\n");
}

} // namespace

int main(int argc, char** argv) {
  auto cfg = parse(argc, argv);
  if (cfg.backend == "sqlite" || cfg.backend == "both") run_sqlite(cfg);
  if (cfg.backend == "pg" || cfg.backend == "both") {
    if (cfg.pg.empty()) {
      std::fprintf(stderr, "no PostgreSQL: pass --pg CONNINFO or set "
                           "CEREBELUM_BENCH_PG (scripts/pg-throwaway.sh "
                           "start DIR prints one)\n");
      return 1;
    }
    try {
      run_pg(cfg);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "postgres: %s\n", e.what());
      return 1;
    }
  }
  if (cfg.json) print_json();
  return 0;
}
