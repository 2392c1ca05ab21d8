#pragma once

// The one rule for text and JSON that crosses a boundary (HTTP, gRPC, CAF,
// worker results, stored events, files): valid UTF-8 within its length and
// character rules, JSON within depth, size and number range. Everything that
// enters is checked here before anything is written; everything echoed back
// in an error or a log line goes through `printable`.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "workflow/limits.hpp"
#include "workflow/result.hpp"

namespace cerebelum::workflow {

using json = nlohmann::json;

/// Deepest nesting of arrays and objects a JSON document may have: the same
/// as a value an expression may build (nlohmann's serializer recurses once
/// per level and overflows an 8 MiB stack near 47,000 levels).
constexpr int max_json_depth = limits::max_value_depth;

/// Largest JSON document accepted at a boundary (the event payload limit is
/// 1 MiB; a request may carry a little more than one payload).
constexpr std::size_t max_json_bytes = 4 * 1024 * 1024;

/// Limits of one JSON parse.
struct json_limits {
  int max_depth = max_json_depth;
  std::size_t max_bytes = max_json_bytes;
};

/// Parses `text` as one JSON document within `limits`. Rejects invalid
/// UTF-8, nesting deeper than `max_depth` (checked before parsing, so the
/// check itself cannot overflow the stack), numbers out of the range of a
/// double (`1e999`) and documents over `max_bytes`. The error message starts
/// with `field` and never echoes more than a few bytes of the input.
[[nodiscard]] result<json> parse_json(std::string_view text,
                                      std::string_view field,
                                      const json_limits& limits = {});

/// The nesting depth of the JSON text `text` (arrays and objects), counted
/// without parsing; strings are skipped. Stops counting at `stop_at`.
[[nodiscard]] int json_text_depth(std::string_view text, int stop_at);

/// Compact JSON text of `value`; invalid UTF-8 in strings is replaced, so
/// this never throws.
[[nodiscard]] std::string safe_dump(const json& value, int indent = -1);

/// Length of the well-formed UTF-8 sequence at the start of `s` (1 to 4),
/// or 0 when it starts with an ill-formed one (or `s` is empty).
[[nodiscard]] std::size_t utf8_sequence_length(std::string_view s) noexcept;

/// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates,
/// nothing above U+10FFFF).
[[nodiscard]] bool valid_utf8(std::string_view text) noexcept;

/// `text` made safe to echo in an error message or a log line: invalid
/// UTF-8 bytes and control characters (newlines included) become `\xNN`, and
/// anything past `max_bytes` is cut and replaced by "...(N bytes)".
[[nodiscard]] std::string printable(std::string_view text,
                                    std::size_t max_bytes = 80);

/// Character rules of a text field.
enum class text_rule {
  /// Names and identifiers: no control characters, no spaces.
  name,
  /// Short labels such as an operator's name: no control characters.
  label,
  /// Free text such as an error message or a reason: any character but
  /// NUL.
  free,
};

/// Checks `value` of field `field` against UTF-8, `max_bytes` and `rule`;
/// returns a message naming the field (the value echoed through
/// `printable`), or nothing when it passes. Empty values pass: whether a
/// field is required is the caller's rule.
[[nodiscard]] std::optional<std::string>
check_text(std::string_view field, std::string_view value,
           std::size_t max_bytes, text_rule rule);

/// Longest execution id, workflow name, worker id, queue or operator name.
constexpr std::size_t max_name_bytes = 200;

/// Longest free text (reasons, error messages).
constexpr std::size_t max_free_text_bytes = 64 * 1024;

} // namespace cerebelum::workflow
