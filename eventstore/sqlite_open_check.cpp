#include "eventstore/sqlite_open_check.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "eventstore/codec.hpp"
#include "eventstore/sqlite_db.hpp"

namespace cerebelum::eventstore::detail {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view sqlite_magic{"SQLite format 3\0", 16};

std::string utc_now() {
  auto t
    = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string errno_text() {
  return std::strerror(errno);
}

/// What the store file is, before SQLite touches it.
enum class file_kind { missing, empty, sqlite, foreign };

struct file_facts {
  file_kind kind = file_kind::missing;
  std::uintmax_t size = 0;
  /// The first bytes of a foreign file, printable.
  std::string head;
};

result<file_facts> inspect(const fs::path& path) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return file_facts{};
    return make_error(errc::storage_error,
                      "cannot stat " + path.string() + ": " + errno_text());
  }
  file_facts facts;
  facts.size = static_cast<std::uintmax_t>(st.st_size);
  if (facts.size == 0) {
    facts.kind = file_kind::empty;
    return facts;
  }
  std::ifstream in{path, std::ios::binary};
  std::string head(sqlite_magic.size(), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  if (head == sqlite_magic) {
    facts.kind = file_kind::sqlite;
  } else {
    facts.kind = file_kind::foreign;
    facts.head = printable_text(head, 32);
  }
  return facts;
}

std::string describe(const file_facts& facts) {
  switch (facts.kind) {
    case file_kind::missing: return "is missing";
    case file_kind::empty: return "is empty (0 bytes)";
    case file_kind::foreign:
      return "is not an SQLite database (" + std::to_string(facts.size)
             + " bytes, beginning with \"" + facts.head + "\")";
    case file_kind::sqlite: return "is an SQLite database";
  }
  return "is unusable";
}

} // namespace

error lost_store_error(const fs::path& path, const std::string& what,
                       const store_marker& marker) {
  return make_error(
    errc::corrupt_store,
    "the event store " + path.string() + " " + what
      + ", but this data directory held a store (created "
      + (marker.created_at.empty() ? std::string{"at an unknown time"}
                                   : marker.created_at)
      + ", recorded in " + marker.path.string()
      + "): starting would silently lose every execution it held, so the "
        "node refuses to start. Restore "
      + path.string()
      + " from a backup; to discard that store and start empty on purpose, "
        "remove "
      + marker.path.string() + " as well");
}

namespace {

/// Adds every key that `sql` (one text column) yields to `ids`; notes where
/// the scan had to stop.
void collect_ids(sqlite_db& db, const char* sql, const char* what,
                 std::set<std::string>& ids, std::string& stopped) {
  try {
    sqlite_stmt st{db, sql};
    while (st.step())
      ids.insert(st.text(0));
  } catch (const sqlite_failure& e) {
    if (!stopped.empty()) stopped += "; ";
    stopped += std::string{what} + " (" + printable_text(e.what(), 60) + ")";
  }
}

/// Whether the index row and the events of `id` read, decode and agree.
bool execution_is_sound(sqlite_stmt& row, sqlite_stmt& events,
                        const std::string& id) {
  try {
    row.bind(1, id);
    bool has_row = row.step();
    auto next_seq = has_row ? row.int64(0) : -1;
    row.reset();
    events.bind(1, id);
    std::int64_t expected = 0;
    bool sound = has_row;
    while (events.step()) {
      stored_event ev{events.int64(0),
                      static_cast<std::int32_t>(events.int64(1)),
                      events.blob(2), events.int64(3)};
      if (ev.seq != expected++ || !decode(ev).ok()) sound = false;
    }
    events.reset();
    return sound && expected == next_seq;
  } catch (const sqlite_failure&) {
    row.reset();
    events.reset();
    return false;
  }
}

} // namespace

std::string printable_text(std::string_view text, std::size_t max) {
  static constexpr const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

result<std::optional<store_marker>> read_store_marker(const fs::path& dir) {
  auto path = dir / sqlite_marker_name;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (ec)
      return make_error(errc::storage_error,
                        "cannot read " + path.string() + ": " + ec.message());
    return std::optional<store_marker>{};
  }
  std::ifstream in{path};
  if (!in)
    return make_error(errc::storage_error,
                      "cannot read " + path.string() + ": " + errno_text());
  store_marker marker;
  marker.path = path;
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (line.empty() || line.front() == '#' || eq == std::string::npos)
      continue;
    auto key = line.substr(0, eq);
    auto value = line.substr(eq + 1);
    if (key == "file") marker.file = value;
    if (key == "created_at") marker.created_at = value;
  }
  if (marker.file.empty())
    return make_error(errc::corrupt_store,
                      "the store marker " + path.string()
                        + " names no store file (no `file=` line): it is "
                          "damaged; restore it from a backup, or write "
                          "`file=cerebelum-events.db` into it if that store "
                          "file is the one to use");
  return std::optional<store_marker>{std::move(marker)};
}

status write_store_marker(const fs::path& dir, std::string_view file) {
  auto path = dir / sqlite_marker_name;
  auto tmp = dir / (std::string{sqlite_marker_name} + ".tmp");
  auto text = "# The event store of this data directory. A node refuses to "
              "start when the\n# file below is then missing, empty or "
              "damaged. Delete this marker only to\n# discard that store on "
              "purpose.\nformat=1\nbackend=sqlite\nfile="
              + std::string{file} + "\ncreated_at=" + utc_now() + "\n";
  auto fail = [&](const std::string& what) {
    return make_error(errc::storage_error, "cannot write " + path.string()
                                             + ": " + what + ": "
                                             + errno_text());
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("open");
  auto n = ::write(fd, text.data(), text.size());
  bool ok = n == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return fail("write");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  // The rename is durable only once the directory is.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail("open directory");
  ok = ::fsync(dfd) == 0;
  ::close(dfd);
  if (!ok) return fail("fsync directory");
  return ok_status();
}

result<preflight> check_before_open(const fs::path& dir,
                                    const std::string& file) {
  auto marker = read_store_marker(dir);
  if (!marker) return std::move(marker).err();
  auto path = dir / file;
  preflight out;
  out.marker = std::move(*marker);
  if (out.marker && out.marker->file != file)
    return make_error(errc::invalid_argument,
                      "the data directory " + dir.string()
                        + " holds the store file " + out.marker->file
                        + " (recorded in " + out.marker->path.string()
                        + "), not " + file);
  auto facts = inspect(path);
  if (!facts) return std::move(facts).err();
  if (facts->kind == file_kind::sqlite) return out;
  if (out.marker) return lost_store_error(path, describe(*facts), *out.marker);
  if (facts->kind == file_kind::foreign)
    return make_error(errc::corrupt_store,
                      path.string() + " " + describe(*facts)
                        + ": it is not a Cerebelum event store; move it away "
                          "or point the node at another data directory");
  out.fresh = true;
  return out;
}

std::vector<std::string> check_pages(sqlite_db& db, sqlite_open_check level) {
  std::vector<std::string> problems;
  if (level == sqlite_open_check::none) return problems;
  auto sql = std::string{"PRAGMA "}
             + (level == sqlite_open_check::full ? "integrity_check"
                                                 : "quick_check")
             + "(" + std::to_string(max_check_problems) + ")";
  try {
    sqlite_stmt st{db, sql};
    while (st.step()) {
      // A row may hold several lines, the first naming the database.
      auto text = st.text(0);
      std::size_t pos = 0;
      while (pos <= text.size()) {
        auto end = std::min(text.find('\n', pos), text.size());
        auto line = text.substr(pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line != "ok" && line.rfind("*** ", 0) != 0)
          problems.push_back(std::move(line));
      }
    }
  } catch (const sqlite_failure& e) {
    problems.emplace_back(e.what());
  }
  return problems;
}

damage_survey survey_damage(sqlite_db& db, std::size_t max_listed) {
  damage_survey out;
  std::set<std::string> ids;
  collect_ids(db, "SELECT execution_id FROM executions", "the executions index",
              ids, out.stopped);
  // Executions whose index row is lost but whose events are not. This scan
  // stops at the first damaged page of the events, which is expected.
  std::string events_stopped;
  collect_ids(db, "SELECT DISTINCT execution_id FROM events", "the events", ids,
              events_stopped);
  out.seen = ids.size();
  try {
    sqlite_stmt row{db, "SELECT next_seq FROM executions "
                        "WHERE execution_id = ?"};
    sqlite_stmt events{db, "SELECT seq, type, payload, recorded_at FROM events "
                           "WHERE execution_id = ? ORDER BY seq"};
    for (const auto& id : ids) {
      if (execution_is_sound(row, events, id)) continue;
      ++out.damaged;
      if (out.listed.size() < max_listed)
        out.listed.push_back("'" + printable_text(id, 64) + "'");
    }
  } catch (const sqlite_failure& e) {
    if (!out.stopped.empty()) out.stopped += "; ";
    out.stopped += "the schema (" + printable_text(e.what(), 60) + ")";
  }
  return out;
}

error damaged_store_error(const std::string& path, sqlite_open_check level,
                          const std::vector<std::string>& problems,
                          const damage_survey& survey) {
  std::string msg
    = "the event store " + path + " is damaged: PRAGMA "
      + (level == sqlite_open_check::full ? "integrity_check" : "quick_check")
      + " found " + (problems.size() >= max_check_problems ? "at least " : "")
      + std::to_string(problems.size()) + " problem(s), first: ";
  for (std::size_t i = 0; i < problems.size() && i < 3; ++i)
    msg += (i > 0 ? " | " : "") + printable_text(problems[i], 120);
  if (survey.damaged == 0) {
    msg += "; none of the " + std::to_string(survey.seen)
           + " executions that could be read is touched";
  } else {
    msg += "; executions touched: " + std::to_string(survey.damaged) + " of "
           + std::to_string(survey.seen) + " read (";
    for (std::size_t i = 0; i < survey.listed.size(); ++i)
      msg += (i > 0 ? ", " : "") + survey.listed[i];
    if (survey.damaged > survey.listed.size())
      msg += ", and " + std::to_string(survey.damaged - survey.listed.size())
             + " more";
    msg += ")";
  }
  if (!survey.stopped.empty())
    msg += "; could not read to the end: " + survey.stopped
           + ", so more executions may be touched";
  msg += ". The node refuses to start on a damaged store: stop anything "
         "that writes to it, keep a copy of the data directory, then "
         "restore "
         + path
         + " from a backup (`sqlite3 FILE .recover` salvages the rows that "
           "can still be read into a new database)";
  return make_error(errc::corrupt_store, std::move(msg));
}

} // namespace cerebelum::eventstore::detail
