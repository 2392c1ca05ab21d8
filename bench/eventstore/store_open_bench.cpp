// store_open_bench: what the SQLite store's check at open costs
// (`sqlite_open_check` none / quick / full) on a store of N executions.
//
//   store_open_bench [--executions N] [--events E] [--payload BYTES]
//                    [--runs R] [--dir DIR]
//
// Fills DIR (default: a temporary directory, removed at the end; an existing
// DIR with a store is reused as it is) through the store API: every
// execution gets E events of BYTES bytes in one append, a sleeping index row
// and one timer. Then opens the store R times per level, with the file in
// the page cache (warm) and evicted from it with posix_fadvise (cold), and
// prints the median open time of each.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "eventstore/sqlite_store.hpp"

using namespace cerebelum::eventstore;
using clock_type = std::chrono::steady_clock;

namespace {

struct config {
  std::size_t executions = 100'000;
  std::size_t events = 10;
  std::size_t payload = 200;
  int runs = 3;
  std::string dir;
};

void fill(const config& cfg) {
  sqlite_options opts;
  opts.data_dir = cfg.dir;
  auto store = open_sqlite_store(opts);
  if (!store) {
    std::fprintf(stderr, "open: %s\n", to_string(store.err()).c_str());
    std::exit(1);
  }
  if (auto row = (*store)->get_execution("x0000000"); row && *row) return;
  auto started = clock_type::now();
  constexpr std::size_t group = 500;
  std::vector<append_request> reqs;
  for (std::size_t i = 0; i < cfg.executions; ++i) {
    char id[32];
    std::snprintf(id, sizeof(id), "x%07zu", i);
    append_request req;
    req.execution_id = id;
    for (std::size_t e = 0; e < cfg.events; ++e) {
      std::string payload = "event " + std::to_string(e) + " of " + id + ":";
      payload.resize(cfg.payload, static_cast<char>('a' + (i + e) % 26));
      req.events.push_back({static_cast<std::int32_t>(1 + e % 18),
                            std::move(payload), 1'700'000'000'000});
    }
    req.index.status = execution_status::sleeping;
    req.index.workflow = "order";
    req.index.workflow_version = 1;
    req.index.phase = "sleep";
    req.index.wake_at_ms = 1'800'000'000'000 + static_cast<std::int64_t>(i);
    req.index.created_at_ms = 1'700'000'000'000 + static_cast<std::int64_t>(i);
    req.index.updated_at_ms = req.index.created_at_ms;
    req.timer_upserts.push_back(
      {id, "t", *req.index.wake_at_ms, "sleep:cool_down", 1});
    reqs.push_back(std::move(req));
    if (reqs.size() == group || i + 1 == cfg.executions) {
      for (auto& res : (*store)->append_batch(reqs))
        if (!res) {
          std::fprintf(stderr, "append: %s\n", to_string(res.err()).c_str());
          std::exit(1);
        }
      reqs.clear();
    }
  }
  auto took = std::chrono::duration<double>(clock_type::now() - started);
  std::printf("filled %zu executions x %zu events of %zu bytes in %.1f s\n",
              cfg.executions, cfg.events, cfg.payload, took.count());
}

/// Evicts `path` from the page cache (the next read goes to the disk).
void evict(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

double open_ms(const config& cfg, sqlite_open_check level, bool cold) {
  auto db = std::filesystem::path{cfg.dir} / "cerebelum-events.db";
  if (cold) {
    evict(db);
    evict(db.string() + "-wal");
  }
  sqlite_options opts;
  opts.data_dir = cfg.dir;
  opts.open_check = level;
  auto started = clock_type::now();
  auto store = open_sqlite_store(opts);
  auto took
    = std::chrono::duration<double, std::milli>(clock_type::now() - started);
  if (!store) {
    std::fprintf(stderr, "open: %s\n", to_string(store.err()).c_str());
    std::exit(1);
  }
  return took.count();
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    std::string val = argv[i + 1];
    if (arg == "--executions")
      cfg.executions = std::stoul(val);
    else if (arg == "--events")
      cfg.events = std::stoul(val);
    else if (arg == "--payload")
      cfg.payload = std::stoul(val);
    else if (arg == "--runs")
      cfg.runs = std::stoi(val);
    else if (arg == "--dir")
      cfg.dir = val;
    else {
      std::fprintf(stderr, "unknown option %s\n", arg.c_str());
      return 2;
    }
  }
  bool own_dir = cfg.dir.empty();
  if (own_dir)
    cfg.dir = (std::filesystem::temp_directory_path()
               / ("store-open-bench-" + std::to_string(::getpid())))
                .string();
  fill(cfg);
  auto db = std::filesystem::path{cfg.dir} / "cerebelum-events.db";
  std::printf("store file: %.1f MiB\n",
              static_cast<double>(std::filesystem::file_size(db))
                / (1024.0 * 1024.0));
  std::printf("%-8s %14s %14s\n", "check", "warm open ms", "cold open ms");
  for (auto level : {sqlite_open_check::none, sqlite_open_check::quick,
                     sqlite_open_check::full}) {
    std::vector<double> warm;
    std::vector<double> cold;
    open_ms(cfg, level, false); // load the page cache
    for (int r = 0; r < cfg.runs; ++r) {
      warm.push_back(open_ms(cfg, level, false));
      cold.push_back(open_ms(cfg, level, true));
    }
    std::printf("%-8s %14.1f %14.1f\n", to_string(level), median(warm),
                median(cold));
  }
  if (own_dir) std::filesystem::remove_all(cfg.dir);
  return 0;
}
