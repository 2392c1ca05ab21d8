#pragma once

// How large a payload the node takes at its edges (`--max-payload-bytes`):
// a start's input, approval data, a native or remote step's result or
// error. The store refuses any event over 1 MiB (1,048,576 bytes); the
// limit stays under it by enough for the envelope of the event that records
// the payload, so that whatever the node accepts it can also store. A value
// the engine builds itself (a map step's combined results, the output) is
// held to the workflow's `max_value_bytes` (1,000,000) by the decider.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cerebelum::actors {

/// The default and the largest value of `--max-payload-bytes`.
inline constexpr std::size_t max_payload_bytes_limit = 1'000'000;

/// "WHAT is SIZE bytes, more than the limit of LIMIT bytes
/// (--max-payload-bytes)" when `size > limit`, nothing otherwise.
std::optional<std::string> payload_over(std::string_view what, std::size_t size,
                                        std::size_t limit);

} // namespace cerebelum::actors
