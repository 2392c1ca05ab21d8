#pragma once

// The attempt token a worker sees: the execution id and the router's
// internal token of one attempt, in one opaque text.
//
// ```
//   <decimal length of execution id> ':' <execution id> ':' <internal token>
//   e.g. "5:ord-1:t-17"
// ```
//
// The length prefix lets execution ids contain ':'; the internal token is
// the rest of the text and may contain anything.

#include <optional>
#include <string>

namespace cerebelum::actors {

/// The two parts of an attempt token.
struct attempt_ref {
  std::string execution_id;
  std::string token; ///< the router's internal token (task row id)
};

/// The external attempt token given to workers for (execution, internal
/// token).
std::string external_token(const std::string& execution_id,
                           const std::string& token);

/// The parts of `external`, or nothing when it is malformed: no length
/// prefix, a prefix longer than 9 digits, a zero or wrong length, or an
/// empty internal token.
std::optional<attempt_ref> parse_external_token(const std::string& external);

} // namespace cerebelum::actors
