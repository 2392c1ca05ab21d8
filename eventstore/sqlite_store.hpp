#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "eventstore/event_store.hpp"

namespace cerebelum::eventstore {

/// How much of an existing store file `open_sqlite_store` verifies before it
/// uses it. Both checks read every page once; see docs/eventstore.md for
/// their cost.
enum class sqlite_open_check {
  /// No check: damage surfaces later, at the first read of a damaged page,
  /// or not at all (a damaged index page may just yield fewer rows). Use
  /// case: a store so large that reading it at every start is too slow, on
  /// storage that checksums its blocks.
  none,
  /// `PRAGMA quick_check`: the structure of every b-tree page, record
  /// formats, NOT NULL. Misses a damaged index entry whose page is well
  /// formed. Use case: a large store where `full` costs too much.
  quick,
  /// `PRAGMA integrity_check`: quick_check plus every index entry against
  /// its table row, so that a flipped key in the index the resurrector
  /// pages is found too. About 1.5x quick warm, the same cold (both read
  /// every page). Use case: the default.
  full,
};

/// Returns "none", "quick" or "full".
const char* to_string(sqlite_open_check x) noexcept;

/// Parses "none", "quick" or "full".
std::optional<sqlite_open_check> parse_sqlite_open_check(std::string_view x);

/// Name of the marker file that a new store leaves in its data directory.
inline constexpr const char* sqlite_marker_name = "STORE";

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
  /// What the open verifies of an existing file.
  sqlite_open_check open_check = sqlite_open_check::full;
  store_limits limits;
};

/// Opens the SQLite store: one file in `data_dir`, WAL journal,
/// `synchronous=FULL` (a commit is on disk when it returns). Creates the
/// schema when the file is new; refuses a file whose schema version is newer
/// or incompatible with an actionable error.
///
/// The store tells the truth at open: once a store was created, a marker
/// file `<data_dir>/STORE` records it, and a store file that is then
/// missing, empty, not a database or without tables is refused
/// (`corrupt_store`) instead of being replaced by an empty store. An
/// existing file is verified as `open_check` says; damage is refused
/// (`corrupt_store`) with the problems found, the executions it touches
/// (a bounded list and a count) and what to do.
result<std::shared_ptr<event_store>>
open_sqlite_store(const sqlite_options& opts);

} // namespace cerebelum::eventstore
