// The one rule for text and JSON at the boundaries (workflow/safe_text).

#include <catch2/catch.hpp>

#include "workflow/safe_text.hpp"

using namespace cerebelum::workflow;

TEST_CASE("valid_utf8 accepts well-formed text and refuses every ill-formed "
          "sequence") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(valid_utf8("\xff"));
  CHECK_FALSE(valid_utf8("\xc0\xaf"));         // overlong '/'
  CHECK_FALSE(valid_utf8("\xe0\x80\xaf"));     // overlong
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));     // surrogate
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
  CHECK_FALSE(valid_utf8("\xc3"));             // truncated
  CHECK_FALSE(valid_utf8("a\x80z"));           // lone continuation
}

TEST_CASE("printable escapes control characters and invalid bytes and cuts "
          "long text") {
  CHECK(printable("a\nb") == "a\\x0ab");
  CHECK(printable("\xff\xfe") == "\\xff\\xfe");
  CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
  auto cut = printable(std::string(1000, 'x'), 10);
  CHECK(cut == "xxxxxxxxxx...(1000 bytes)");
}

TEST_CASE("json_text_depth counts nesting without parsing and ignores brackets "
          "in strings") {
  CHECK(json_text_depth("1", 10) == 0);
  CHECK(json_text_depth("[[{}]]", 10) == 3);
  CHECK(json_text_depth(R"({"a": "[[[[", "b": [1]})", 10) == 2);
  CHECK(json_text_depth(R"(["\"[[[", []])", 10) == 2);
  CHECK(json_text_depth(std::string(100'000, '['), 128) == 129);
}

TEST_CASE("parse_json refuses deep nesting, oversized text, invalid UTF-8 "
          "and out-of-range numbers, naming the field") {
  auto deep = std::string(100'000, '[') + std::string(100'000, ']');
  auto r = parse_json(deep, "body");
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "body: JSON nested deeper than 128 levels");
  CHECK(parse_json(std::string(128, '[') + std::string(128, ']'), "x"));
  auto big = parse_json("\"" + std::string(100, 'a') + "\"", "x",
                        json_limits{128, 50});
  REQUIRE_FALSE(big);
  CHECK(big.error().message.find("exceeds the limit of 50 bytes")
        != std::string::npos);
  auto utf = parse_json("{\"a\": \"\xff\"}", "input");
  REQUIRE_FALSE(utf);
  CHECK(utf.error().message.rfind("input: not valid JSON", 0) == 0);
  CHECK(valid_utf8(utf.error().message));
  auto huge = parse_json(R"({"n": 1e999})", "input");
  REQUIRE_FALSE(huge);
  CHECK(huge.error().message.find("out of range") != std::string::npos);
  auto ok = parse_json(R"({"n": [1, 2.5, "x"]})", "input");
  REQUIRE(ok);
  CHECK(ok.value()["n"][2] == "x");
}

TEST_CASE("check_text applies the name, label and free-text rules") {
  CHECK_FALSE(check_text("id", "order-1", 200, text_rule::name));
  CHECK(check_text("id", "a b", 200, text_rule::name));
  CHECK_FALSE(check_text("by", "Alice Smith", 200, text_rule::label));
  CHECK(check_text("by", "alice\n[info] forged", 200, text_rule::label));
  CHECK_FALSE(check_text("reason", "line 1\nline 2", 200, text_rule::free));
  auto bad = check_text("by", "\xff", 200, text_rule::label);
  REQUIRE(bad);
  CHECK(*bad == "by: not valid UTF-8 ('\\xff')");
  auto long_name = check_text("id", std::string(201, 'a'), 200,
                              text_rule::name);
  REQUIRE(long_name);
  CHECK(*long_name == "id: 201 bytes exceeds the limit of 200 bytes");
}

TEST_CASE("safe_dump never throws on invalid UTF-8 in strings") {
  json value = {{"s", std::string("\xff\xfe")}};
  CHECK_NOTHROW(safe_dump(value));
  CHECK_THROWS(value.dump());
}
