#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "workflow/result.hpp"

namespace cerebelum::workflow {

/// Parses a duration literal into milliseconds.
///
/// Accepted: one or more `<digits><unit>` groups with unit `ms`, `s`, `m`,
/// `h` or `d` (`1h30m`, `250ms`, `2s`), or bare digits meaning milliseconds.
/// Negative, empty, overflowing or unit-less-after-unit inputs are errors.
[[nodiscard]] result<std::int64_t> parse_duration(std::string_view text);

/// Formats milliseconds as the shortest literal `parse_duration` accepts.
[[nodiscard]] std::string format_duration(std::int64_t ms);

} // namespace cerebelum::workflow
