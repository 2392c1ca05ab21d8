#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "eventstore/event_store.hpp"

namespace cerebelum::eventstore {

/// Options of the embedded SQLite backend.
struct sqlite_options {
  /// Directory holding the database file; created if missing.
  std::string data_dir;
  /// Name of the database file inside `data_dir`.
  std::string file_name = "cerebelum-events.db";
  /// How long a connection waits for a lock held by another connection.
  std::chrono::milliseconds busy_timeout{10'000};
  /// Creates the schema in an empty database; otherwise an empty database
  /// is an error.
  bool create_if_missing = true;
  store_limits limits;
};

/// Opens the SQLite store: one file in `data_dir`, WAL journal,
/// `synchronous=FULL` (a commit is on disk when it returns). Creates the
/// schema when the file is new; refuses a file whose schema version is newer
/// or incompatible with an actionable error.
result<std::shared_ptr<event_store>>
open_sqlite_store(const sqlite_options& opts);

} // namespace cerebelum::eventstore
