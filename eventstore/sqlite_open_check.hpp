#pragma once

// Internal: what `sqlite_store::open` verifies before it trusts a file, so
// that a lost or damaged store is refused instead of being taken for an
// empty one or failing later, page by page.
//
// The marker `<data_dir>/STORE` is written (durably) once the schema of a
// store is committed, and at the first open of a store created before
// markers existed. It tells "no store yet" from "the store is gone":
//
//   marker    store file                      verdict
//   absent    missing or 0 bytes              new store: create it
//   absent    SQLite file                     existing: verify it
//   absent    anything else                   refused: not a database
//   present   missing, 0 bytes, not SQLite    refused: the store was lost
//   present   SQLite file without tables      refused: the store was lost
//   present   SQLite file                     existing: verify it
//
// Marker format, one `key=value` per line (`#` lines are comments):
//
//   format=1
//   backend=sqlite
//   file=cerebelum-events.db
//   created_at=2025-01-31T12:00:00Z

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/result.hpp"
#include "eventstore/sqlite_store.hpp"

namespace cerebelum::eventstore::detail {

class sqlite_db;

/// What the marker of a data directory records.
struct store_marker {
  std::filesystem::path path;
  /// Name of the store file inside the data directory.
  std::string file;
  /// When the store was created (UTC, ISO 8601), as recorded.
  std::string created_at;
};

/// Reads the marker of `dir`; `std::nullopt` when there is none.
result<std::optional<store_marker>>
read_store_marker(const std::filesystem::path& dir);

/// Writes the marker of `dir` for the store file `file`: a temporary file,
/// fsync, rename, fsync of the directory.
status write_store_marker(const std::filesystem::path& dir,
                          std::string_view file);

/// The verdict on a store file before SQLite opens it.
struct preflight {
  /// No store existed here: create one.
  bool fresh = false;
  /// The marker, when the data directory has one.
  std::optional<store_marker> marker;
};

/// The refusal of a store that `marker` says existed but whose file `path`
/// is gone: `what` says how ("is missing", "has no tables", ...).
error lost_store_error(const std::filesystem::path& path,
                       const std::string& what, const store_marker& marker);

/// Checks the store file `dir/file` against the marker of `dir` (see the
/// table above); a lost store is a `corrupt_store` error that names the file
/// and says what to do.
result<preflight> check_before_open(const std::filesystem::path& dir,
                                    const std::string& file);

/// Problems a check at open collects, at most.
inline constexpr std::size_t max_check_problems = 20;

/// Runs `PRAGMA quick_check` or `integrity_check` on `db`; returns the
/// problems found (about `max_check_problems` at most), empty when the file
/// is sound. A check that cannot even run (SQLITE_CORRUPT, SQLITE_NOTADB) is
/// one problem.
std::vector<std::string> check_pages(sqlite_db& db, sqlite_open_check level);

/// The executions a damaged file touches, as far as they can be read.
struct damage_survey {
  /// Executions found (index rows and event keys that could be read).
  std::size_t seen = 0;
  /// Executions whose index row or events cannot be read or decoded, or do
  /// not match (missing row, gap in seq, next_seq != event count).
  std::size_t damaged = 0;
  /// The first damaged ones, printable.
  std::vector<std::string> listed;
  /// Where the scan of the executions index had to stop (empty: it read to
  /// the end, so every execution with an index row was checked).
  std::string stopped;
};

/// Reads every execution's index row and events and decodes them, skipping
/// what cannot be read. Best effort and as costly as reading every history:
/// run only on a file already known to be damaged.
damage_survey survey_damage(sqlite_db& db, std::size_t max_listed);

/// The refusal of a damaged store at open: the file, the check's problems,
/// the executions touched, what to do.
error damaged_store_error(const std::string& path, sqlite_open_check level,
                          const std::vector<std::string>& problems,
                          const damage_survey& survey);

/// Renders `text` printable: control and non-ASCII bytes as \xHH, at most
/// `max` characters.
std::string printable_text(std::string_view text, std::size_t max = 80);

} // namespace cerebelum::eventstore::detail
