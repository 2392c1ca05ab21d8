#include "src/bridges/http_target.hpp"

namespace cerebelum::api::http {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

} // namespace

std::string decode_url(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0
        && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16
                               + hex_value(text[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::multimap<std::string, std::string> parse_query(std::string_view text) {
  std::multimap<std::string, std::string> params;
  while (!text.empty()) {
    auto amp = text.find('&');
    auto part = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{}
                                         : text.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    auto name = part.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{}
                                              : part.substr(eq + 1);
    if (name.empty()) continue;
    params.emplace(decode_url(name, true), decode_url(value, true));
  }
  return params;
}

target_parts split_target(std::string_view target) {
  target_parts out;
  auto q = target.find('?');
  out.path = decode_url(target.substr(0, q), false);
  if (q != std::string_view::npos)
    out.query = parse_query(target.substr(q + 1));
  return out;
}

} // namespace cerebelum::api::http
