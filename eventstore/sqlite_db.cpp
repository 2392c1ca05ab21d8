#include "eventstore/sqlite_db.hpp"

#include <sqlite3.h>

namespace cerebelum::eventstore::detail {

bool sqlite_failure::is_data_error() const noexcept {
  return code_ == SQLITE_CONSTRAINT || code_ == SQLITE_TOOBIG
         || code_ == SQLITE_MISMATCH || code_ == SQLITE_RANGE;
}

sqlite_db::sqlite_db(const std::string& path, bool create) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw sqlite_failure(rc, "cannot open " + path + ": " + msg);
  }
  sqlite3_extended_result_codes(db_, 0);
}

sqlite_db::~sqlite_db() {
  for (auto& [sql, stmts] : idle_)
    for (auto* stmt : stmts)
      sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

namespace {

/// Most idle statements a connection keeps of one SQL text, and in all
/// (queries built from filters have many texts).
constexpr std::size_t idle_per_sql = 4;
constexpr std::size_t idle_max = 128;

} // namespace

sqlite3_stmt* sqlite_db::take_statement(std::string_view sql) {
  if (auto i = idle_.find(std::string{sql});
      i != idle_.end() && !i->second.empty()) {
    auto* stmt = i->second.back();
    i->second.pop_back();
    --idle_count_;
    return stmt;
  }
  sqlite3_stmt* stmt = nullptr;
  check(sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
        sql);
  return stmt;
}

void sqlite_db::give_back(sqlite3_stmt* stmt) {
  if (stmt == nullptr) return;
  // A failed step's error comes back from reset: the statement is reusable.
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  const char* sql = sqlite3_sql(stmt);
  if (sql != nullptr && idle_count_ < idle_max) {
    auto& stmts = idle_[sql];
    if (stmts.size() < idle_per_sql) {
      stmts.push_back(stmt);
      ++idle_count_;
      return;
    }
  }
  sqlite3_finalize(stmt);
}

void sqlite_db::exec(std::string_view sql) {
  std::string copy{sql};
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string what = msg != nullptr ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    throw sqlite_failure(rc, what + " (in: " + copy.substr(0, 80) + ")");
  }
}

void sqlite_db::check(int rc, std::string_view context) const {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  throw sqlite_failure(rc & 0xff, std::string{sqlite3_errmsg(db_)} + " (in: "
                                    + std::string{context.substr(0, 80)} + ")");
}

sqlite_stmt::sqlite_stmt(sqlite_db& db, std::string_view sql)
  : db_(db), stmt_(db.take_statement(sql)) {
  // nop
}

sqlite_stmt::~sqlite_stmt() {
  db_.give_back(stmt_);
}

sqlite_stmt& sqlite_stmt::bind(int idx, std::int64_t value) {
  db_.check(sqlite3_bind_int64(stmt_, idx, value), "bind");
  return *this;
}

sqlite_stmt& sqlite_stmt::bind(int idx, std::string_view text) {
  db_.check(sqlite3_bind_text64(stmt_, idx, text.data(), text.size(),
                                SQLITE_TRANSIENT, SQLITE_UTF8),
            "bind");
  return *this;
}

sqlite_stmt& sqlite_stmt::bind_blob(int idx, std::string_view bytes) {
  db_.check(sqlite3_bind_blob64(stmt_, idx, bytes.data(), bytes.size(),
                                SQLITE_TRANSIENT),
            "bind");
  return *this;
}

sqlite_stmt& sqlite_stmt::bind(int idx, std::optional<std::int64_t> value) {
  if (value) return bind(idx, *value);
  db_.check(sqlite3_bind_null(stmt_, idx), "bind");
  return *this;
}

int sqlite_stmt::param(const char* name) const {
  return sqlite3_bind_parameter_index(stmt_, name);
}

bool sqlite_stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  auto code = sqlite3_reset(stmt_);
  db_.check(code != SQLITE_OK ? code : rc, sqlite3_sql(stmt_));
  return false;
}

void sqlite_stmt::run() {
  while (step()) {
    // drain
  }
  reset();
}

void sqlite_stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t sqlite_stmt::int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string sqlite_stmt::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  auto n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string{}
                      : std::string{reinterpret_cast<const char*>(p),
                                    static_cast<std::size_t>(n)};
}

std::string sqlite_stmt::blob(int col) const {
  const auto* p = sqlite3_column_blob(stmt_, col);
  auto n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string{}
                      : std::string{static_cast<const char*>(p),
                                    static_cast<std::size_t>(n)};
}

bool sqlite_stmt::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

} // namespace cerebelum::eventstore::detail
