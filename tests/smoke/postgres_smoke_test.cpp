#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include <pqxx/pqxx>

namespace {

/// The connection string of the throwaway server started by the test command.
std::string test_pg() {
  const char* conn = std::getenv("CEREBELUM_TEST_PG");
  if (conn == nullptr || *conn == '\0')
    FAIL("CEREBELUM_TEST_PG is not set: run the suite with "
         "`./cerebelum.sh test`, which starts a throwaway PostgreSQL");
  return conn;
}

} // namespace

TEST_CASE("the throwaway PostgreSQL accepts connections and commits") {
  pqxx::connection conn{test_pg()};
  pqxx::work tx{conn};
  tx.exec0("CREATE TEMP TABLE smoke(x int)");
  tx.exec0("INSERT INTO smoke VALUES (41), (1)");
  auto row = tx.exec1("SELECT sum(x) FROM smoke");
  CHECK(row[0].as<int>() == 42);
  tx.commit();
}

TEST_CASE("the throwaway PostgreSQL runs with durable commits") {
  pqxx::connection conn{test_pg()};
  pqxx::nontransaction tx{conn};
  CHECK(tx.exec1("SHOW fsync")[0].as<std::string>() == "on");
  CHECK(tx.exec1("SHOW synchronous_commit")[0].as<std::string>() == "on");
}
