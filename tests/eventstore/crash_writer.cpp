// Helper of the crash test: appends through the group writer from many
// threads until killed, and records every acknowledged append in a file.
//
//   eventstore_crash_writer ACK_FILE sqlite DATA_DIR
//   eventstore_crash_writer ACK_FILE pg CONNINFO SCHEMA
//
// Each append adds `events_per_append` events to the thread's execution,
// updates its index row and upserts its timer "t" with fire_at = next_seq, so
// that a reader can check that the three tables moved together. An ack line
// "<execution_id> <next_seq>\n" is written with one write(2) after the writer
// acknowledged the append, never before.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/group_writer.hpp"
#include "eventstore/pg_store.hpp"
#include "eventstore/sqlite_store.hpp"
#include "tests/eventstore/crash_protocol.hpp"

using namespace cerebelum::eventstore;
using namespace cerebelum::eventstore::testing;

namespace {

result<std::shared_ptr<event_store>> open_store(int argc, char** argv) {
  std::string kind = argv[2];
  if (kind == "sqlite" && argc == 4) {
    sqlite_options opts;
    opts.data_dir = argv[3];
    return open_sqlite_store(opts);
  }
  if (kind == "pg" && argc == 5) {
    pg_options opts;
    opts.conninfo = argv[3];
    opts.schema = argv[4];
    opts.event_partitions = 4;
    return open_pg_store(opts);
  }
  return make_error(errc::invalid_argument, "usage: see crash_writer.cpp");
}

void append_loop(group_writer& writer, event_store& store, int fd, int t) {
  auto id = crash_execution_id(t);
  auto row = store.get_execution(id);
  if (!row.ok()) return;
  std::int64_t next = row->has_value() ? (*row)->next_seq : 0;
  for (;;) {
    auto res = writer.append_and_wait(crash_append(id, next));
    if (!res.ok()) {
      std::fprintf(stderr, "append failed: %s\n", to_string(res.err()).c_str());
      return;
    }
    next = res->next_seq;
    auto line = id + " " + std::to_string(next) + "\n";
    if (::write(fd, line.data(), line.size())
        != static_cast<ssize_t>(line.size()))
      return;
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s ACK_FILE sqlite DIR | pg CONNINFO SCHEMA\n",
                 argv[0]);
    return 2;
  }
  auto store = open_store(argc, argv);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", to_string(store.err()).c_str());
    return 1;
  }
  int fd = ::open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return 1;
  group_writer writer{*store};
  std::vector<std::thread> threads;
  for (int t = 0; t < crash_threads; ++t)
    threads.emplace_back([&, t] {
      append_loop(writer, **store, fd, t);
    });
  for (auto& th : threads)
    th.join();
  return 1; // only a failed append ends the loop
}
