// The count of waiting requests per principal (src/bridges/principal_waits):
// a principal at its limit is refused while others are served, and every
// ticket given back frees its place.

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/errc.hpp"
#include "src/bridges/principal_waits.hpp"

using namespace cerebelum;
using api::principal_waits;

namespace {

/// `n` tickets of `who`, each required to be admitted.
std::vector<principal_waits::ticket>
take(principal_waits& waits, const std::string& who, std::size_t n) {
  std::vector<principal_waits::ticket> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto t = waits.admit(who);
    REQUIRE(t);
    out.push_back(std::move(*t));
  }
  return out;
}

} // namespace

TEST_CASE("a principal at its wait limit is refused, naming the principal, "
          "the limit and the flag, while another principal is served") {
  auto waits = std::make_shared<principal_waits>(3);
  auto held = take(*waits, "alice", 3);
  CHECK(waits->held("alice") == 3);
  auto refused = waits->admit("alice");
  REQUIRE_FALSE(refused);
  CHECK(actors::api_error_code(refused.error()) == actors::errc::overloaded);
  auto message = actors::api_error_message(refused.error());
  CHECK(message.find("'alice'") != std::string::npos);
  CHECK(message.find("3 waiting requests") != std::string::npos);
  CHECK(message.find("--max-waits-per-principal") != std::string::npos);
  CHECK(waits->held("alice") == 3); // a refusal counts nothing
  auto bob = waits->admit("bob");
  CHECK(bob);
  CHECK(waits->held("bob") == 1);
}

TEST_CASE("a released or destroyed wait ticket frees its place at once, "
          "and only once") {
  auto waits = std::make_shared<principal_waits>(2);
  auto held = take(*waits, "alice", 2);
  CHECK_FALSE(waits->admit("alice"));
  held[0].release();
  held[0].release(); // idempotent
  CHECK(waits->held("alice") == 1);
  auto again = waits->admit("alice");
  REQUIRE(again);
  CHECK_FALSE(waits->admit("alice"));
  {
    // Moved from: only the new owner counts.
    auto moved = std::move(*again);
    CHECK(waits->held("alice") == 2);
  }
  CHECK(waits->held("alice") == 1);
  held.clear();
  CHECK(waits->held("alice") == 0);
  CHECK(take(*waits, "alice", 2).size() == 2);
}

TEST_CASE("a move-assigned wait ticket gives back the place it held") {
  auto waits = std::make_shared<principal_waits>(2);
  auto a = take(*waits, "alice", 1);
  auto b = take(*waits, "bob", 1);
  a[0] = std::move(b[0]);
  CHECK(waits->held("alice") == 0);
  CHECK(waits->held("bob") == 1);
  a.clear();
  b.clear();
  CHECK(waits->held("bob") == 0);
}

TEST_CASE("requests without a principal are never counted nor refused") {
  auto waits = std::make_shared<principal_waits>(1);
  std::vector<principal_waits::ticket> held;
  for (int i = 0; i < 10; ++i) {
    auto t = waits->admit("");
    REQUIRE(t);
    held.push_back(std::move(*t));
  }
  CHECK(waits->held("") == 0);
}

TEST_CASE("a wait ticket outlives its counter's other owners") {
  std::optional<principal_waits::ticket> held;
  {
    auto waits = std::make_shared<principal_waits>(1);
    auto t = waits->admit("alice");
    REQUIRE(t);
    held = std::move(*t);
  }
  held.reset(); // releases into the counter it keeps alive
  SUCCEED();
}
