// Crash test: a real process appending through the group writer is killed
// with SIGKILL mid-stream; the store is reopened and must hold every
// acknowledged append and no partial one. Repeated over several rounds, each
// resuming from what the store holds.

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "tests/eventstore/backends.hpp"
#include "tests/eventstore/crash_protocol.hpp"
#include "tests/eventstore/helpers.hpp"

using namespace cerebelum::eventstore;
using namespace cerebelum::eventstore::testing;

#define BACKENDS sqlite_tag, pg_tag

namespace {

/// Highest acknowledged next_seq per execution in the ack file.
std::map<std::string, std::int64_t> read_acks(const std::string& path,
                                              std::size_t& lines) {
  std::map<std::string, std::int64_t> acks;
  std::ifstream in{path};
  std::string line;
  lines = 0;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string id;
    std::int64_t next = 0;
    if (!(fields >> id >> next)) continue; // a torn last line is not an ack
    ++lines;
    acks[id] = std::max(acks[id], next);
  }
  return acks;
}

pid_t spawn_writer(const std::string& ack_file,
                   const std::vector<std::string>& store_args) {
  std::vector<std::string> args{CEREBELUM_CRASH_WRITER, ack_file};
  args.insert(args.end(), store_args.begin(), store_args.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

/// Waits until the ack file holds `min_acks` more lines than `before`, then
/// a random few milliseconds more, and kills the writer with SIGKILL.
void kill_mid_stream(pid_t pid, const std::string& ack_file, std::size_t before,
                     std::size_t min_acks, std::mt19937& rng) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  std::size_t lines = 0;
  int status = 0;
  for (;;) {
    read_acks(ack_file, lines);
    if (lines >= before + min_acks) break;
    REQUIRE(::waitpid(pid, &status, WNOHANG) == 0); // must still run
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{rng() % 50});
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

/// Checks one execution: every acked event is there, the history is whole
/// appends only, and index row and timer moved with the events.
void check_execution(event_store& store, const std::string& id,
                     std::int64_t acked) {
  INFO("execution " << id << ", acknowledged up to " << acked);
  auto events = read_all(store, id);
  auto n = static_cast<std::int64_t>(events.size());
  CHECK(n >= acked);
  CHECK(n % events_per_append == 0);
  for (std::int64_t i = 0; i < n; ++i)
    if (events[i].seq != i || events[i].payload != crash_payload(id, i))
      FAIL("event " << i << " is wrong");
  auto row = require_ok(store.get_execution(id));
  if (n == 0) {
    CHECK_FALSE(row.has_value());
    return;
  }
  REQUIRE(row.has_value());
  CHECK(row->next_seq == n);
  CHECK(row->phase == std::to_string(n));
  auto timers = require_ok(store.timers_of(id));
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].fire_at_ms == n);
}

} // namespace

TEMPLATE_TEST_CASE("every acknowledged append survives a kill -9 of the "
                   "appending process and no partial append is visible",
                   "[crash]", BACKENDS) {
  auto be = TestType::make();
  require_ok(be->open()); // creates the schema before the first writer
  auto ack_file = "/tmp/" + unique_name("cerebelum-acks") + ".txt";
  std::mt19937 rng{std::random_device{}()};
  std::size_t acked_lines = 0;
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    auto pid = spawn_writer(ack_file, be->store_args());
    REQUIRE(pid > 0);
    kill_mid_stream(pid, ack_file, acked_lines, 300, rng);
    auto acks = read_acks(ack_file, acked_lines);
    auto store = require_ok(be->open());
    REQUIRE(acks.size() == crash_threads);
    for (int t = 0; t < crash_threads; ++t) {
      auto id = crash_execution_id(t);
      check_execution(*store, id, acks[id]);
    }
  }
  std::remove(ack_file.c_str());
}
