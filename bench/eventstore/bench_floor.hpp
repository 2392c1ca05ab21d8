#pragma once

// The raw floor of the event store benchmark: the same event rows written
// with no engine code, in batches, with durable commits.

#include <cstddef>
#include <string>

namespace cerebelum::eventstore::bench {

/// One event row of the benchmark: ~200 bytes of payload.
std::string bench_payload(std::size_t i);

/// Which rows a floor run writes, for how long: row i is event seq
/// `i / executions` of execution "<tag>-<i % executions>" (`executions` = 0:
/// every row its own execution, i.e. fresh keys). With `executions` = 1024
/// and batches of 1024 these are the rows the store writes with 1,024
/// appenders.
struct floor_shape {
  std::size_t batch = 1024;
  std::size_t executions = 1024;
  double seconds = 5;
  std::string tag = "floor";
  /// Also write each row's execution index row (insert for seq 0, then an
  /// update of next_seq and updated_at), as the store does, with raw SQL.
  bool with_index = false;
};

/// Inserts rows into the events table of the SQLite store in `data_dir`
/// (created by `open_sqlite_store`), one transaction per batch with one
/// prepared INSERT, for `shape.seconds`; returns rows per second.
double sqlite_floor(const std::string& data_dir, const floor_shape& shape);

/// COPYs rows into the events table of the PostgreSQL store in `schema`, one
/// transaction per batch, for `shape.seconds`; returns rows per second.
double pg_floor(const std::string& conninfo, const std::string& schema,
                const floor_shape& shape);

} // namespace cerebelum::eventstore::bench
