#pragma once

#include <memory>
#include <string>

#include "eventstore/event_store.hpp"

namespace cerebelum::eventstore {

/// Options of the PostgreSQL backend.
struct pg_options {
  /// libpq connection string, e.g. "host=127.0.0.1 port=5432 dbname=x".
  std::string conninfo;
  /// Database schema (namespace) holding the tables; created if missing.
  /// Several stores can share a database under different schemas.
  std::string schema = "cerebelum";
  /// Number of hash partitions of the events table (fixed at creation).
  int event_partitions = 16;
  /// Creates the schema when it does not exist; otherwise that is an error.
  bool create_if_missing = true;
  store_limits limits;
};

/// Opens the PostgreSQL store (libpqxx). Creates or validates the schema;
/// refuses a newer or incompatible schema with an actionable error. Every
/// connection runs with `synchronous_commit = on`. A lost connection is
/// re-established on the next call; an append whose COMMIT outcome is
/// unknown is reported as `possibly_committed`, never as success.
result<std::shared_ptr<event_store>> open_pg_store(const pg_options& opts);

} // namespace cerebelum::eventstore
