// The attempt token codec (actors/attempt_token.hpp).
#include <catch2/catch.hpp>

#include <string>

#include "actors/attempt_token.hpp"

using cerebelum::actors::external_token;
using cerebelum::actors::lease_secret_chars;
using cerebelum::actors::new_lease_secret;
using cerebelum::actors::parse_external_token;
using cerebelum::actors::redacted;
using cerebelum::actors::secret_matches;

namespace {

const std::string secret = "0123456789abcdef0123456789abcdef";

} // namespace

TEST_CASE("an attempt token names its execution, secret and internal token") {
  auto text = external_token("ord-1", secret, "t-17");
  CHECK(text == "5:ord-1:" + secret + ":t-17");
  auto ref = parse_external_token(text);
  REQUIRE(ref);
  CHECK(ref->execution_id == "ord-1");
  CHECK(ref->secret == secret);
  CHECK(ref->token == "t-17");
}

TEST_CASE("an execution id with colons survives the round trip") {
  auto ref = parse_external_token(external_token("a:b:c", secret, "x:y"));
  REQUIRE(ref);
  CHECK(ref->execution_id == "a:b:c");
  CHECK(ref->token == "x:y");
}

TEST_CASE("a token without a whole hex secret is refused") {
  CHECK_FALSE(parse_external_token("5:ord-1:t-17"));
  CHECK_FALSE(parse_external_token("5:ord-1:" + secret.substr(1) + ":t-17"));
  CHECK_FALSE(parse_external_token("5:ord-1:" + secret + "0:t-17"));
  CHECK_FALSE(parse_external_token("5:ord-1:" + secret + ":"));
  auto upper = secret;
  upper[10] = 'A';
  CHECK_FALSE(parse_external_token("5:ord-1:" + upper + ":t-17"));
}

TEST_CASE("lease secrets are 128 random bits in hex, and differ") {
  auto a = new_lease_secret();
  auto b = new_lease_secret();
  CHECK(a.size() == lease_secret_chars);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != b);
  CHECK(secret_matches(a, a));
  CHECK_FALSE(secret_matches(a, b));
  CHECK_FALSE(secret_matches(a, a.substr(1)));
  CHECK_FALSE(secret_matches("", ""));
}

TEST_CASE("a redacted token keeps its execution and internal token only") {
  CHECK(redacted(external_token("ord-1", secret, "t-17"))
        == "5:ord-1:***:t-17");
  CHECK(redacted("garbage-that-is-long") == "garbage-...");
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
