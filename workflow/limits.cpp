#include "workflow/limits.hpp"

#include "workflow/safe_text.hpp"

#include <vector>

namespace cerebelum::workflow::limits {

namespace {

using json = nlohmann::json;

/// Bytes of `s` as a JSON string: quotes plus escapes.
std::size_t string_bytes(const std::string& s) {
  std::size_t n = 2;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n'
        || c == '\r' || c == '\t')
      n += 2;
    else if (c < 0x20)
      n += 6;
    else
      n += 1;
  }
  return n;
}

std::size_t digits(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

std::size_t scalar_bytes(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return 4;
    case json::value_t::boolean: return v.get<bool>() ? 4 : 5;
    case json::value_t::number_integer: {
      auto i = v.get<std::int64_t>();
      return i < 0 ? 1 + digits(0 - static_cast<std::uint64_t>(i))
                   : digits(static_cast<std::uint64_t>(i));
    }
    case json::value_t::number_unsigned: return digits(v.get<std::uint64_t>());
    case json::value_t::number_float: return 24;
    case json::value_t::string:
      return string_bytes(v.get_ref<const std::string&>());
    case json::value_t::binary: return v.get_binary().size() * 2 + 2;
    default: return 0;
  }
}

} // namespace

value_size measure(const json& v, std::size_t max_bytes, int max_depth) {
  // Iterative, so that measuring a value nested deeper than any limit
  // cannot overflow the stack.
  struct frame {
    const json* container;
    json::const_iterator next;
  };
  value_size out;
  if (!v.is_structured()) {
    out.bytes = scalar_bytes(v);
    return out;
  }
  std::vector<frame> stack;
  stack.push_back({&v, v.cbegin()});
  out.bytes = 2;
  out.depth = 1;
  while (!stack.empty()) {
    if (out.bytes > max_bytes || out.depth > max_depth) return out;
    auto& top = stack.back();
    if (top.next == top.container->cend()) {
      stack.pop_back();
      continue;
    }
    auto it = top.next++;
    if (it != top.container->cbegin()) out.bytes += 1; // ','
    if (top.container->is_object())
      out.bytes += string_bytes(it.key()) + 1; // "key":
    const json& child = *it;
    if (child.is_structured()) {
      out.bytes += 2;
      stack.push_back({&child, child.cbegin()});
      if (static_cast<int>(stack.size()) > out.depth)
        out.depth = static_cast<int>(stack.size());
    } else {
      out.bytes += scalar_bytes(child);
    }
  }
  return out;
}

std::optional<std::string> check_value(const json& v) {
  auto m = measure(v);
  if (m.depth > max_value_depth)
    return "value nested too deeply: more than "
           + std::to_string(max_value_depth)
           + " levels of lists and objects (limit max_value_depth)";
  if (m.bytes > max_value_bytes)
    return "value too large: more than " + std::to_string(max_value_bytes)
           + " bytes of JSON (limit max_value_bytes)";
  return std::nullopt;
}

std::optional<std::size_t> invalid_utf8_at(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    auto n = utf8_sequence_length(text.substr(i));
    if (n == 0) return i;
    i += n;
  }
  return std::nullopt;
}

} // namespace cerebelum::workflow::limits
