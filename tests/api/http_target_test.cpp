// The request target as the HTTP server reads it before routing
// (src/bridges/http_target.hpp; fuzzed by tests/fuzz/http_request_fuzz.cpp).

#include <catch2/catch.hpp>

#include "src/bridges/http_target.hpp"

using namespace cerebelum::api::http;

TEST_CASE("a target's path is percent-decoded and keeps its plus signs") {
  auto parts = split_target("/v1/executions/o%2D7+x/history");
  CHECK(parts.path == "/v1/executions/o-7+x/history");
  CHECK(parts.query.empty());
}

TEST_CASE("a query is split at ampersands and its plus signs are spaces") {
  auto parts = split_target("/v1/executions?status=running&by=ada+l%2B&flag");
  CHECK(parts.path == "/v1/executions");
  REQUIRE(parts.query.size() == 3);
  CHECK(parts.query.find("status")->second == "running");
  CHECK(parts.query.find("by")->second == "ada l+");
  CHECK(parts.query.find("flag")->second.empty());
}

TEST_CASE("empty query segments and empty names are skipped, repeats kept") {
  auto q = parse_query("&&=x&a=1&&a=2&");
  REQUIRE(q.size() == 2);
  CHECK(q.count("a") == 2);
}

TEST_CASE("a percent sign without two hex digits stays as it is") {
  CHECK(decode_url("100%", false) == "100%");
  CHECK(decode_url("%zz%4", false) == "%zz%4");
  CHECK(decode_url("%41%62", false) == "Ab");
  CHECK(decode_url("%00", false) == std::string(1, '\0'));
}
