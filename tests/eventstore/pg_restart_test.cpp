// PostgreSQL restart: the server is restarted (pg_ctl restart -m fast) while
// threads append through the group writer. No acknowledged append may be
// lost, no unpersisted one acknowledged, and the store reconnects by itself.
//
// The test starts its own throwaway server (scripts/pg-throwaway.sh), so that
// restarting it cannot disturb other tests sharing CEREBELUM_TEST_PG.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "eventstore/group_writer.hpp"
#include "eventstore/pg_store.hpp"
#include "tests/eventstore/backends.hpp"
#include "tests/eventstore/helpers.hpp"
#include "tests/support/eventually.hpp"

using namespace cerebelum::eventstore;
using namespace cerebelum::eventstore::testing;
using cerebelum::test::eventually;

namespace {

/// Runs a shell command and returns its first output line; REQUIREs success.
std::string run(const std::string& cmd) {
  auto* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[512] = {0};
  std::string out;
  if (std::fgets(buf, sizeof(buf), pipe) != nullptr) out = buf;
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) {
    // drain
  }
  INFO(cmd);
  REQUIRE(::pclose(pipe) == 0);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

/// A private throwaway server, stopped and removed on destruction.
struct private_server {
  private_server() : dir("/tmp/" + unique_name("cerebelum-pg-restart")) {
    conninfo = run(std::string{CEREBELUM_SOURCE_DIR}
                   + "/scripts/pg-throwaway.sh start " + dir);
  }

  ~private_server() {
    std::system((std::string{CEREBELUM_SOURCE_DIR}
                 + "/scripts/pg-throwaway.sh stop " + dir + " >/dev/null 2>&1")
                  .c_str());
  }

  void restart() {
    // As scripts/pg-throwaway.sh: the server belongs to `postgres` when the
    // tests run as root.
    run("bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1); "
        "as_pg=; [ \"$(id -u)\" -eq 0 ] && as_pg='runuser -u postgres --'; "
        "$as_pg \"$bindir/pg_ctl\" -D "
        + dir + "/data -m fast -w -t 60 restart >/dev/null 2>&1 && echo ok");
  }

  std::string dir;
  std::string conninfo;
};

/// One appender: appends 1 event at a time to its execution; on an error it
/// re-reads the index (the append may or may not have committed) and goes on.
/// The test thread reads the counts while it runs.
struct appender {
  std::string id;
  std::atomic<std::int64_t> acked{0};
  std::atomic<std::int64_t> acked_after_restart{0};
  std::atomic<int> errors{0};
};

/// Whether every appender satisfies `pred`.
template <class Pred>
bool all_of(const std::vector<appender>& xs, Pred pred) {
  for (const auto& a : xs)
    if (!pred(a)) return false;
  return true;
}

void append_until(group_writer& writer, event_store& store, appender& a,
                  const std::atomic<bool>& stop,
                  const std::atomic<bool>& restarted) {
  std::int64_t next = 0;
  while (!stop) {
    auto res = writer.append_and_wait(make_append(a.id, next, 1));
    if (res.ok()) {
      next = a.acked = res->next_seq;
      if (restarted) ++a.acked_after_restart;
      continue;
    }
    ++a.errors;
    // Paces the retries against a server that is restarting (not a wait
    // for an event: the loop re-reads the index and tries again).
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    auto row = store.get_execution(a.id);
    if (row.ok() && row->has_value()) next = (*row)->next_seq;
  }
}

} // namespace

TEST_CASE("appends survive a PostgreSQL restart and the store reconnects",
          "[pg][restart]") {
  test_pg(); // a PostgreSQL test fails when the suite has no server
  private_server server;
  pg_options opts;
  opts.conninfo = server.conninfo;
  opts.schema = "restart_test";
  auto store = require_ok(open_pg_store(opts));
  writer_options wopts;
  wopts.verify_timeout = std::chrono::seconds{30};
  group_writer writer{store, wopts};
  std::vector<appender> appenders(8);
  std::atomic<bool> stop{false};
  std::atomic<bool> restarted{false};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < appenders.size(); ++i) {
    appenders[i].id = "r" + std::to_string(i);
    threads.emplace_back([&, i] {
      append_until(writer, *store, appenders[i], stop, restarted);
    });
  }
  // Every appender has committed before the restart...
  CHECK(eventually([&] {
    return all_of(appenders, [](const appender& a) {
      return a.acked > 0;
    });
  }));
  server.restart();
  restarted = true;
  // ...and again after it, once the store has reconnected by itself.
  CHECK(eventually(
    [&] {
      return all_of(appenders, [](const appender& a) {
        return a.acked_after_restart > 0;
      });
    },
    std::chrono::seconds{60}));
  stop = true;
  for (auto& th : threads)
    th.join();
  writer.close();
  int errors = 0;
  for (const auto& a : appenders) {
    INFO("execution " << a.id);
    CHECK(a.acked_after_restart > 0); // reconnected by itself
    errors += a.errors;
    auto events = read_all(*store, a.id);
    CHECK(static_cast<std::int64_t>(events.size()) >= a.acked.load());
    auto row = require_ok(store->get_execution(a.id));
    REQUIRE(row.has_value());
    CHECK(row->next_seq == static_cast<std::int64_t>(events.size()));
    for (std::size_t s = 0; s < events.size(); ++s)
      CHECK(events[s].seq == static_cast<std::int64_t>(s));
  }
  WARN("appends that failed during the restart: " << errors);
}
