// The SQLite store tells the truth at open: a store that existed and is gone
// (missing, empty, not a database, without tables) is refused instead of
// being recreated empty, and a damaged file is refused with the executions
// it touches.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <sqlite3.h>

#include "eventstore/codec.hpp"
#include "eventstore/sqlite_store.hpp"
#include "tests/eventstore/helpers.hpp"
#include "tests/support/scratch.hpp"

using namespace cerebelum::eventstore;
using namespace cerebelum::eventstore::testing;
using cerebelum::test::temp_dir;
namespace fs = std::filesystem;

namespace {

constexpr const char* store_file = "cerebelum-events.db";

result<std::shared_ptr<event_store>>
open_in(const fs::path& dir,
        sqlite_open_check check = sqlite_open_check::full) {
  sqlite_options opts;
  opts.data_dir = dir.string();
  opts.open_check = check;
  return open_sqlite_store(opts);
}

/// Creates a store in `dir` with `n` executions of `per_execution` decodable
/// events each (results of `pad` bytes) and closes it.
void fill(const fs::path& dir, int n, int per_execution = 3,
          std::size_t pad = 10) {
  auto store = require_ok(open_in(dir));
  for (int i = 0; i < n; ++i) {
    auto req = make_append("ex-" + std::to_string(1000 + i), 0, 0);
    for (int e = 0; e < per_execution; ++e) {
      cerebelum::events::Event ev;
      auto* done = ev.mutable_step_completed();
      done->set_step("step-" + std::to_string(e));
      done->set_result_json("\"" + std::string(pad, 'x') + "\"");
      req.events.push_back(require_ok(encode(ev)));
    }
    require_ok(store->append(req));
  }
}

/// Runs `sql` on the database file `path` with a raw connection.
void exec_sql(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* msg = nullptr;
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  INFO((msg != nullptr ? msg : ""));
  sqlite3_free(msg);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

/// The page numbers of the leaf pages of `table`, in order.
std::vector<long long> leaf_pages(const fs::path& path,
                                  const std::string& table) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  auto sql = "SELECT pageno FROM dbstat WHERE name = '" + table
             + "' AND pagetype = 'leaf' ORDER BY pageno";
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::vector<long long> out;
  while (sqlite3_step(st) == SQLITE_ROW)
    out.push_back(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

/// Overwrites the header of page `pageno` (4 KiB pages) with 0xff bytes.
void smash_page(const fs::path& path, long long pageno) {
  std::fstream f{path, std::ios::in | std::ios::out | std::ios::binary};
  REQUIRE(f);
  auto offset = (pageno - 1) * 4096 + (pageno == 1 ? 100 : 0);
  f.seekp(offset);
  std::string junk(12, '\xff');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  REQUIRE(f);
}

} // namespace

TEST_CASE("a new data directory gets a store and a marker naming its file") {
  temp_dir dir;
  require_ok(open_in(dir.path));
  std::ifstream marker{dir.path / sqlite_marker_name};
  REQUIRE(marker);
  std::string text{std::istreambuf_iterator<char>{marker}, {}};
  CHECK_THAT(text, Catch::Contains(std::string{"file="} + store_file));
  CHECK_THAT(text, Catch::Contains("created_at="));
  require_ok(open_in(dir.path)); // and it opens again
}

TEST_CASE("a store file truncated to 0 bytes under a marker is refused, not "
          "recreated empty") {
  temp_dir dir;
  fill(dir.path, 3);
  fs::resize_file(dir.path / store_file, 0);
  auto res = open_in(dir.path);
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::corrupt_store);
  CHECK_THAT(res.err().message, Catch::Contains("is empty (0 bytes)"));
  CHECK_THAT(res.err().message, Catch::Contains(store_file));
  CHECK_THAT(res.err().message, Catch::Contains("from a backup"));
  // Nothing was written over it: a restored backup still fits.
  CHECK(fs::file_size(dir.path / store_file) == 0);
}

TEST_CASE("a missing store file under a marker is refused and no new file is "
          "created") {
  temp_dir dir;
  fill(dir.path, 1);
  fs::remove(dir.path / store_file);
  auto res = open_in(dir.path);
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::corrupt_store);
  CHECK_THAT(res.err().message, Catch::Contains("is missing"));
  CHECK_FALSE(fs::exists(dir.path / store_file));
}

TEST_CASE("a store file replaced by an empty SQLite database under a marker "
          "is refused") {
  temp_dir dir;
  fill(dir.path, 1);
  fs::remove(dir.path / store_file);
  exec_sql(dir.path / store_file, "PRAGMA user_version = 1");
  auto res = open_in(dir.path);
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::corrupt_store);
  CHECK_THAT(res.err().message, Catch::Contains("has no tables"));
}

TEST_CASE("a store file that is not a database is refused with its first "
          "bytes") {
  temp_dir dir;
  fill(dir.path, 1);
  {
    std::ofstream out{dir.path / store_file, std::ios::trunc};
    out << "not a database at all";
  }
  auto res = open_in(dir.path);
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::corrupt_store);
  CHECK_THAT(res.err().message, Catch::Contains("is not an SQLite database"));
  CHECK_THAT(res.err().message,
             Catch::Contains("beginning with \"not a database"));
}

TEST_CASE("a store created before markers existed gets its marker at the next "
          "open") {
  temp_dir dir;
  fill(dir.path, 2);
  fs::remove(dir.path / sqlite_marker_name);
  auto store = require_ok(open_in(dir.path));
  CHECK(fs::exists(dir.path / sqlite_marker_name));
  CHECK(read_all(*store, "ex-1001").size() == 3);
}

TEST_CASE("a damaged page is refused at open with the executions it touches") {
  temp_dir dir;
  fill(dir.path, 200, 5, 300);
  auto path = dir.path / store_file;
  auto pages = leaf_pages(path, "events");
  REQUIRE(pages.size() > 10);
  smash_page(path, pages[pages.size() / 2]);
  for (auto check : {sqlite_open_check::quick, sqlite_open_check::full}) {
    INFO(to_string(check));
    auto res = open_in(dir.path, check);
    REQUIRE_FALSE(res.ok());
    CHECK(res.err().code == errc::corrupt_store);
    const auto& msg = res.err().message;
    CHECK_THAT(msg, Catch::Contains(path.string() + " is damaged"));
    CHECK_THAT(msg, Catch::Contains(check == sqlite_open_check::quick
                                      ? "quick_check"
                                      : "integrity_check"));
    // The executions whose events sat on that page, as a bounded list and a
    // count.
    CHECK_THAT(msg, Catch::Contains("executions touched: "));
    CHECK_THAT(msg, Catch::Contains("'ex-1"));
    CHECK_THAT(msg, Catch::Contains("from a backup"));
    CHECK_THAT(msg, !Catch::Contains("newer"));
  }
}

TEST_CASE("a flipped key in a well-formed index page is missed by "
          "quick_check and refused by the default check") {
  temp_dir dir;
  fill(dir.path, 50);
  auto path = dir.path / store_file;
  auto pages = leaf_pages(path, "executions_by_status");
  if (pages.empty()) { // a one-page index is its own (leaf) root
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "SELECT rootpage FROM sqlite_master WHERE "
                               "name = 'executions_by_status'",
                               -1, &st, nullptr)
            == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    pages.push_back(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  {
    // "running" -> "bunning" in one index entry: the page stays well formed.
    std::fstream f{path, std::ios::in | std::ios::out | std::ios::binary};
    std::string page(4096, '\0');
    f.seekg((pages.front() - 1) * 4096);
    f.read(page.data(), 4096);
    auto at = page.find("running");
    REQUIRE(at != std::string::npos);
    f.seekp((pages.front() - 1) * 4096 + static_cast<std::streamoff>(at));
    f.write("b", 1);
    REQUIRE(f);
  }
  require_ok(open_in(dir.path, sqlite_open_check::quick));
  auto res = open_in(dir.path);
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::corrupt_store);
  CHECK_THAT(res.err().message, Catch::Contains("integrity_check found"));
  CHECK_THAT(res.err().message, Catch::Contains("executions_by_status"));
}

TEST_CASE("a damaged page met after an open without check is a corrupt_store "
          "error naming the file") {
  temp_dir dir;
  fill(dir.path, 200, 5, 300);
  auto path = dir.path / store_file;
  auto pages = leaf_pages(path, "events");
  REQUIRE(pages.size() > 10);
  smash_page(path, pages[pages.size() / 2]);
  auto store = require_ok(open_in(dir.path, sqlite_open_check::none));
  bool found = false;
  for (int i = 0; i < 200 && !found; ++i) {
    auto n = store->read("ex-" + std::to_string(1000 + i), 0,
                         [](const stored_event&) {
                           return true;
                         });
    if (n.ok()) continue;
    found = true;
    CHECK(n.err().code == errc::corrupt_store);
    CHECK_FALSE(n.err().retryable);
    CHECK_THAT(n.err().message, Catch::Contains(path.string()));
  }
  CHECK(found);
}

TEST_CASE("the open check levels parse from their names") {
  for (auto check : {sqlite_open_check::none, sqlite_open_check::quick,
                     sqlite_open_check::full})
    CHECK(parse_sqlite_open_check(to_string(check)) == check);
  CHECK_FALSE(parse_sqlite_open_check("fast").has_value());
}
