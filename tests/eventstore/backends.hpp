#pragma once

// Backend factories of the conformance suite: each makes a fresh, isolated
// store location (a temp directory, a unique PostgreSQL schema) and removes
// it when destroyed, so tests can run in parallel.

#include <memory>
#include <string>
#include <vector>

#include "eventstore/event_store.hpp"

namespace cerebelum::eventstore::testing {

/// A fresh store location of one backend.
class backend {
 public:
  virtual ~backend();

  /// Opens (or reopens) the store at this location.
  virtual result<std::shared_ptr<event_store>> open(store_limits limits = {})
    = 0;

  /// Overwrites the stored schema version with raw SQL.
  virtual void set_schema_version(int version) = 0;

  /// Turns the store into a schema `version` (1 to 4) store with raw SQL:
  /// drops the tables and columns later versions added (tokens.cert_subject
  /// at 4, tokens below 4, definitions below 2) and sets the version.
  virtual void make_old(int version) = 0;

  /// Arguments naming this store location on a command line:
  /// {"sqlite", DIR} or {"pg", CONNINFO, SCHEMA}.
  virtual std::vector<std::string> store_args() const = 0;

  /// Returns the number of event rows of `execution_id`, counted with raw SQL.
  virtual long long count_events(const std::string& execution_id) = 0;
};

/// A temp-directory SQLite store.
std::unique_ptr<backend> make_sqlite_backend();

/// A unique schema on the server of CEREBELUM_TEST_PG; fails the test with a
/// clear message when that variable is unset.
std::unique_ptr<backend> make_pg_backend();

/// The connection string of the throwaway server; FAILs when unset.
std::string test_pg();

/// A unique name with `prefix`, usable as a schema or directory name.
std::string unique_name(const std::string& prefix);

struct sqlite_tag {
  static std::unique_ptr<backend> make() {
    return make_sqlite_backend();
  }
};

struct pg_tag {
  static std::unique_ptr<backend> make() {
    return make_pg_backend();
  }
};

} // namespace cerebelum::eventstore::testing
