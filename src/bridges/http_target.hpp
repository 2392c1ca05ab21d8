#pragma once

// A request target as the HTTP server (http_server.hpp) reads it before
// routing: the path, percent-decoded, and the query parameters. Pure
// functions of the bytes a client sent, apart from the server so that
// tests/fuzz/http_request_fuzz.cpp reaches them without a socket.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace cerebelum::api::http {

/// A request line and header fields of more bytes than this are refused
/// (400).
inline constexpr std::uint32_t max_header_bytes = 16 * 1024;

/// Percent-decodes `text`; with `plus_is_space`, '+' is a space (query
/// strings). A '%' not followed by two hex digits stays as it is.
[[nodiscard]] std::string decode_url(std::string_view text, bool plus_is_space);

/// The parameters of a query string: `a=1&b&c=x%20y`; empty segments and
/// empty names are skipped, a name without '=' has the value "".
[[nodiscard]] std::multimap<std::string, std::string>
parse_query(std::string_view text);

/// A request target split at its first '?'.
struct target_parts {
  /// The path, percent-decoded ('+' stays '+').
  std::string path;
  /// The query's parameters, decoded.
  std::multimap<std::string, std::string> query;
};

/// Splits and decodes `target` ("/v1/executions?status=running").
[[nodiscard]] target_parts split_target(std::string_view target);

} // namespace cerebelum::api::http
