#pragma once

// Internal: a thin RAII layer over the SQLite C API used by sqlite_store.cpp.
// Failures throw `sqlite_failure`, which the store catches at its boundary.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace cerebelum::eventstore::detail {

/// A failed SQLite call: the primary result code and its message.
class sqlite_failure : public std::runtime_error {
 public:
  sqlite_failure(int code, const std::string& what)
    : std::runtime_error(what), code_(code) {
    // nop
  }

  /// The primary SQLite result code (e.g. SQLITE_CONSTRAINT).
  int code() const noexcept {
    return code_;
  }

  /// Returns whether the failure concerns only the statement's data (a
  /// constraint violation, a too-big value), not the connection.
  bool is_data_error() const noexcept;

 private:
  int code_;
};

class sqlite_db;

/// A prepared statement. Bind indexes start at 1.
class sqlite_stmt {
 public:
  sqlite_stmt(sqlite_db& db, std::string_view sql);
  sqlite_stmt(const sqlite_stmt&) = delete;
  sqlite_stmt& operator=(const sqlite_stmt&) = delete;
  ~sqlite_stmt();

  sqlite_stmt& bind(int idx, std::int64_t value);
  sqlite_stmt& bind(int idx, std::string_view text);
  sqlite_stmt& bind_blob(int idx, std::string_view bytes);
  sqlite_stmt& bind(int idx, std::optional<std::int64_t> value);

  /// Returns the index of the named parameter `name` (e.g. ":limit").
  int param(const char* name) const;

  /// Steps once; returns true when a row is available.
  bool step();

  /// Runs a statement that returns no rows, then resets it.
  void run();

  /// Resets the statement and clears its bindings.
  void reset();

  std::int64_t int64(int col) const;
  std::string text(int col) const;
  std::string blob(int col) const;
  bool is_null(int col) const;

 private:
  sqlite_db& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// An open database connection.
class sqlite_db {
 public:
  /// Opens (creating if allowed) the database file at `path`.
  sqlite_db(const std::string& path, bool create);
  sqlite_db(const sqlite_db&) = delete;
  sqlite_db& operator=(const sqlite_db&) = delete;
  ~sqlite_db();

  /// Runs one or more statements without results.
  void exec(std::string_view sql);

  /// Throws the connection's last error if `rc` is not OK/ROW/DONE.
  void check(int rc, std::string_view context) const;

  sqlite3* handle() const noexcept {
    return db_;
  }

  /// A prepared statement of `sql`: one the connection keeps from an
  /// earlier use (reset, no bindings), or a new one. Preparing is a large
  /// part of a short query's cost.
  sqlite3_stmt* take_statement(std::string_view sql);

  /// Takes `stmt` back (reset, bindings cleared) for the next use of its
  /// SQL, or finalizes it when the connection keeps enough.
  void give_back(sqlite3_stmt* stmt);

 private:
  sqlite3* db_ = nullptr;
  /// Idle prepared statements by SQL text (finalized before the close).
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle_;
  std::size_t idle_count_ = 0;
};

} // namespace cerebelum::eventstore::detail
