// The attempt token codec (actors/attempt_token.hpp).
#include <catch2/catch.hpp>

#include <string>

#include "actors/attempt_token.hpp"

using cerebelum::actors::external_token;
using cerebelum::actors::parse_external_token;

TEST_CASE("an attempt token names its execution and internal token") {
  auto text = external_token("ord-1", "t-17");
  CHECK(text == "5:ord-1:t-17");
  auto ref = parse_external_token(text);
  REQUIRE(ref);
  CHECK(ref->execution_id == "ord-1");
  CHECK(ref->token == "t-17");
}

TEST_CASE("an execution id with colons survives the round trip") {
  auto ref = parse_external_token(external_token("a:b:c", "x:y"));
  REQUIRE(ref);
  CHECK(ref->execution_id == "a:b:c");
  CHECK(ref->token == "x:y");
}

TEST_CASE("malformed attempt tokens are refused") {
  for (std::string bad : {"", ":", "abc", ":ord:t", "x5:ord-1:t", "5:ord-1",
                          "5:ord-1:", "6:ord-1:t", "4:ord-1:t", "0::t",
                          "1234567890:o:t", "5:ord-1t-17"})
    CHECK_FALSE(parse_external_token(bad));
}

TEST_CASE("a length prefix longer than the text is refused") {
  CHECK_FALSE(parse_external_token("999:ord:t"));
  CHECK_FALSE(parse_external_token("999999999:ord:t"));
}
