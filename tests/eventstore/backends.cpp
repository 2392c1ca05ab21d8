#include "tests/eventstore/backends.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include <pqxx/pqxx>
#include <sqlite3.h>
#include <unistd.h>

#include "eventstore/pg_store.hpp"
#include "eventstore/sqlite_store.hpp"

namespace cerebelum::eventstore::testing {

backend::~backend() = default;

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return prefix + "_" + std::to_string(::getpid()) + "_"
         + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
}

std::string test_pg() {
  const char* conn = std::getenv("CEREBELUM_TEST_PG");
  if (conn == nullptr || *conn == '\0')
    FAIL("CEREBELUM_TEST_PG is not set: run the suite with "
         "`./cerebelum.sh test`, which starts a throwaway PostgreSQL, or "
         "export the connection string of scripts/pg-throwaway.sh start DIR");
  return conn;
}

namespace {

class sqlite_backend final : public backend {
 public:
  sqlite_backend()
    : dir_(std::filesystem::temp_directory_path()
           / unique_name("cerebelum-es")) {
    // nop
  }

  ~sqlite_backend() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  result<std::shared_ptr<event_store>> open(store_limits limits) override {
    sqlite_options opts;
    opts.data_dir = dir_.string();
    opts.limits = limits;
    return open_sqlite_store(opts);
  }

  void set_schema_version(int version) override {
    exec("UPDATE schema_version SET version = " + std::to_string(version));
  }

  void make_old(int version) override {
    std::string sql;
    if (version < 5) sql += "DROP TABLE workflow_owners;";
    if (version == 5)
      sql += "ALTER TABLE workflow_owners DROP COLUMN previous_owner;"
             "ALTER TABLE workflow_owners DROP COLUMN replaced_by;"
             "ALTER TABLE workflow_owners DROP COLUMN replaced_at_ms;";
    if (version < 4) sql += "DROP TABLE tokens;";
    if (version == 4) sql += "ALTER TABLE tokens DROP COLUMN cert_subject;";
    if (version < 2) sql += "DROP TABLE definitions;";
    exec(sql
         + "UPDATE schema_version SET version = " + std::to_string(version));
  }

  std::vector<std::string> store_args() const override {
    return {"sqlite", dir_.string()};
  }

  long long count_events(const std::string& id) override {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path().c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE execution_id = ?",
                       -1, &st, nullptr);
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    auto n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

 private:
  std::string path() const {
    return (dir_ / "cerebelum-events.db").string();
  }

  void exec(const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path().c_str(), &db) == SQLITE_OK);
    auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }

  std::filesystem::path dir_;
};

class pg_backend final : public backend {
 public:
  pg_backend() : conninfo_(test_pg()), schema_(unique_name("es_test")) {
    // nop
  }

  ~pg_backend() override {
    try {
      pqxx::connection conn{conninfo_};
      pqxx::nontransaction tx{conn};
      tx.exec0("DROP SCHEMA IF EXISTS " + tx.quote_name(schema_) + " CASCADE");
    } catch (const std::exception&) {
      // Best effort: the throwaway server is removed anyway.
    }
  }

  result<std::shared_ptr<event_store>> open(store_limits limits) override {
    pg_options opts;
    opts.conninfo = conninfo_;
    opts.schema = schema_;
    opts.event_partitions = 4;
    opts.limits = limits;
    return open_pg_store(opts);
  }

  void set_schema_version(int version) override {
    pqxx::connection conn{conninfo_};
    pqxx::work tx{conn};
    tx.exec0("UPDATE " + tx.quote_name(schema_)
             + ".schema_version SET version = " + std::to_string(version));
    tx.commit();
  }

  void make_old(int version) override {
    pqxx::connection conn{conninfo_};
    pqxx::work tx{conn};
    auto schema = tx.quote_name(schema_);
    if (version < 5) tx.exec0("DROP TABLE " + schema + ".workflow_owners");
    if (version == 5)
      tx.exec0("ALTER TABLE " + schema
               + ".workflow_owners DROP COLUMN previous_owner, "
                 "DROP COLUMN replaced_by, DROP COLUMN replaced_at_ms");
    if (version < 4) tx.exec0("DROP TABLE " + schema + ".tokens");
    if (version == 4)
      tx.exec0("ALTER TABLE " + schema + ".tokens DROP COLUMN cert_subject");
    if (version < 2) tx.exec0("DROP TABLE " + schema + ".definitions");
    tx.exec0("UPDATE " + schema
             + ".schema_version SET version = " + std::to_string(version));
    tx.commit();
  }

  std::vector<std::string> store_args() const override {
    return {"pg", conninfo_, schema_};
  }

  long long count_events(const std::string& id) override {
    pqxx::connection conn{conninfo_};
    pqxx::work tx{conn};
    return tx
      .exec_params1("SELECT count(*) FROM " + tx.quote_name(schema_)
                      + ".events WHERE execution_id = $1",
                    id)[0]
      .as<long long>();
  }

 private:
  std::string conninfo_;
  std::string schema_;
};

} // namespace

std::unique_ptr<backend> make_sqlite_backend() {
  return std::make_unique<sqlite_backend>();
}

std::unique_ptr<backend> make_pg_backend() {
  return std::make_unique<pg_backend>();
}

} // namespace cerebelum::eventstore::testing
