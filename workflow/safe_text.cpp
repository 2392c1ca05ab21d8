#include "workflow/safe_text.hpp"

#include "workflow/limits.hpp"

#include <algorithm>
#include <cstdint>

namespace cerebelum::workflow {

namespace {

void append_hex(std::string& out, std::uint8_t c) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\x";
  out += hex[c >> 4];
  out += hex[c & 0xf];
}

std::string field_prefix(std::string_view field) {
  return std::string{field} + ": ";
}

} // namespace

std::size_t utf8_sequence_length(std::string_view s) noexcept {
  if (s.empty()) return 0;
  auto b = [&](std::size_t i) {
    return static_cast<std::uint8_t>(s[i]);
  };
  auto cont = [&](std::size_t i) {
    return i < s.size() && (b(i) & 0xC0) == 0x80;
  };
  auto c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0; // overlong
    if (c == 0xED && b(1) > 0x9F) return 0; // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0; // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}

bool valid_utf8(std::string_view text) noexcept {
  return !limits::invalid_utf8_at(text).has_value();
}

std::string printable(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 8);
  std::size_t i = 0;
  while (i < text.size() && out.size() < max_bytes) {
    auto c = static_cast<std::uint8_t>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      append_hex(out, c);
      ++i;
      continue;
    }
    auto n = c < 0x80 ? 1 : utf8_sequence_length(text.substr(i));
    if (n == 0) {
      append_hex(out, c);
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  if (i < text.size()) out += "...(" + std::to_string(text.size()) + " bytes)";
  return out;
}

int json_text_depth(std::string_view text, int stop_at) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i; // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_at) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return deepest;
}

result<json> parse_json(std::string_view text, std::string_view field,
                        const json_limits& limits) {
  auto fail = [&](std::string message) -> result<json> {
    diagnostic d;
    d.message = field_prefix(field) + std::move(message);
    return d;
  };
  if (text.size() > limits.max_bytes)
    return fail("JSON text of " + std::to_string(text.size())
                + " bytes exceeds the limit of "
                + std::to_string(limits.max_bytes) + " bytes");
  if (auto depth = json_text_depth(text, limits.max_depth);
      depth > limits.max_depth)
    return fail("JSON nested deeper than " + std::to_string(limits.max_depth)
                + " levels");
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::out_of_range& e) {
    // 406: a number beyond the range of a double, e.g. 1e999.
    return fail("not valid JSON: number out of range ("
                + printable(e.what(), 120) + ")");
  } catch (const json::exception& e) {
    return fail("not valid JSON: " + printable(e.what(), 160));
  }
}

std::string safe_dump(const json& value, int indent) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::optional<std::string> check_text(std::string_view field,
                                      std::string_view value,
                                      std::size_t max_bytes, text_rule rule) {
  if (value.size() > max_bytes)
    return std::string{field} + ": " + std::to_string(value.size())
           + " bytes exceeds the limit of " + std::to_string(max_bytes)
           + " bytes";
  if (!valid_utf8(value))
    return std::string{field} + ": not valid UTF-8 ('" + printable(value)
           + "')";
  for (unsigned char c : value) {
    bool bad = false;
    switch (rule) {
      case text_rule::name: bad = c <= 0x20 || c == 0x7f; break;
      case text_rule::label: bad = c < 0x20 || c == 0x7f; break;
      case text_rule::free: bad = c == 0; break;
    }
    if (bad)
      return std::string{field} + ": contains "
             + (c == ' ' ? std::string{"a space"}
                         : std::string{"a control character"})
             + " ('" + printable(value) + "')";
  }
  return std::nullopt;
}

} // namespace cerebelum::workflow
