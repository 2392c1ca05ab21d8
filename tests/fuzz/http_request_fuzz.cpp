// Fuzzes what the HTTP API reads from a connection before a handler runs:
// the bytes go, in reads of sizes drawn from the first input byte, through
// Boost.Beast's request parser configured as the server configures it
// (header and body limits of src/bridges/http_server.cpp); a request that
// parses has its target split and decoded as the server does before
// routing (src/bridges/http_target.hpp), and its body and every query
// value parsed as the handlers parse a JSON body (workflow::parse_json,
// which parse_json_field and decision_body use). Routing by the API's
// patterns and the handlers themselves need a running server and are not
// reached here (tests/api/http_api_test.cpp and
// tests/node/hostile_input_test.cpp cover them over sockets).
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "src/bridges/http_server.hpp"
#include "src/bridges/http_target.hpp"
#include "workflow/safe_text.hpp"

namespace bhttp = boost::beast::http;
using namespace cerebelum;

namespace {

using parser = bhttp::request_parser<bhttp::string_body>;

/// Feeds `bytes` to `p` in reads drawn from `seed`, keeping what the parser
/// did not take for the next read (as a read buffer does). Returns whether a
/// whole request was parsed.
bool parse(parser& p, std::string_view bytes, std::uint32_t seed) {
  std::string pending;
  std::size_t pos = 0;
  while (pos < bytes.size() && !p.is_done()) {
    seed = seed * 1103515245u + 12345u;
    auto chunk = std::min<std::size_t>(1 + (seed >> 16) % 257,
                                       bytes.size() - pos);
    pending.append(bytes.substr(pos, chunk));
    pos += chunk;
    while (!pending.empty() && !p.is_done()) {
      boost::beast::error_code ec;
      auto used = p.put(boost::asio::buffer(pending), ec);
      if (used > pending.size()) std::abort();
      pending.erase(0, used);
      if (ec == bhttp::error::need_more) break;
      if (ec) return false;
    }
  }
  return p.is_done();
}

void check_json(std::string_view text, std::string_view field) {
  auto doc = workflow::parse_json(text, field);
  if (doc) (void)workflow::safe_dump(*doc);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0) return 0;
  std::string_view bytes{reinterpret_cast<const char*>(data) + 1, size - 1};
  parser p;
  p.eager(true);
  p.header_limit(api::http::max_header_bytes);
  p.body_limit(api::http::server_options{}.max_body_bytes);
  if (!parse(p, bytes, data[0])) return 0;
  const auto& msg = p.get();
  auto target = std::string{msg.target()};
  auto parts = api::http::split_target(target);
  // Decoding only ever shortens.
  if (parts.path.size() > target.size()) std::abort();
  for (const auto& [name, value] : parts.query) {
    if (name.empty()) std::abort();
    check_json(value, name);
  }
  check_json(msg.body(), "body");
  return 0;
}
