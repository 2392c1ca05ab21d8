#include "workflow/duration.hpp"

#include <limits>

namespace cerebelum::workflow {

namespace {

constexpr std::int64_t max_ms = std::numeric_limits<std::int64_t>::max() / 4;

/// Milliseconds per unit, or 0 for an unknown unit.
std::int64_t unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60'000;
  if (unit == "h") return 3'600'000;
  if (unit == "d") return 86'400'000;
  return 0;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

} // namespace

result<std::int64_t> parse_duration(std::string_view text) {
  auto fail = [&](std::string why) {
    return diagnostic{{},
                      0,
                      0,
                      {},
                      "invalid duration '" + std::string{text}
                        + "': " + std::move(why)};
  };
  if (text.empty()) return fail("empty");
  std::int64_t total = 0;
  std::size_t pos = 0;
  bool bare = true;
  while (pos < text.size()) {
    if (!is_digit(text[pos])) return fail("expected a number");
    std::int64_t n = 0;
    while (pos < text.size() && is_digit(text[pos])) {
      n = n * 10 + (text[pos] - '0');
      if (n > max_ms) return fail("too large");
      ++pos;
    }
    auto start = pos;
    while (pos < text.size() && !is_digit(text[pos]))
      ++pos;
    auto unit = text.substr(start, pos - start);
    if (unit.empty()) {
      if (!bare || pos != text.size()) return fail("missing unit");
      return n;
    }
    bare = false;
    auto factor = unit_ms(unit);
    if (factor == 0)
      return fail("unknown unit '" + std::string{unit}
                  + "' (use ms, s, m, h or d)");
    if (n > max_ms / factor || total > max_ms - n * factor)
      return fail("too large");
    total += n * factor;
  }
  return total;
}

std::string format_duration(std::int64_t ms) {
  if (ms <= 0) return "0ms";
  struct unit {
    std::int64_t factor;
    const char* name;
  };
  constexpr unit units[] = {
    {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  std::string out;
  for (const auto& u : units) {
    if (ms >= u.factor) {
      out += std::to_string(ms / u.factor) + u.name;
      ms %= u.factor;
    }
  }
  return out;
}

} // namespace cerebelum::workflow
