#pragma once

// The attempt token a worker sees: the execution id, the lease's secret and
// the router's internal token of one attempt, in one opaque text.
//
// ```
//   <decimal length of execution id> ':' <execution id> ':'
//   <secret: 32 lowercase hex digits> ':' <internal token>
//   e.g. "5:ord-1:3f9c...e1:t-17"
// ```
//
// The length prefix lets execution ids contain ':'; the internal token is
// the rest of the text and may contain anything. The execution id and the
// internal token are in the public history; the secret is not: it is drawn
// afresh (128 bits from the system's CSPRNG) for every lease and handed only
// to the worker that took the lease, so a token built from the history does
// not act on an attempt. Tokens are secrets: never log one (`redacted`).

#include <optional>
#include <string>

namespace cerebelum::actors {

/// Hex digits of a lease secret (128 bits).
inline constexpr std::size_t lease_secret_chars = 32;

/// The parts of an attempt token.
struct attempt_ref {
  std::string execution_id;
  std::string secret; ///< the lease's secret (hex)
  std::string token;  ///< the router's internal token (task row id)
};

/// A fresh lease secret: `lease_secret_chars` hex digits from the system's
/// CSPRNG. Throws std::runtime_error when the CSPRNG fails (never silently
/// weak).
std::string new_lease_secret();

/// Whether `given` equals `expected`, in time that depends on their lengths
/// only. An empty `expected` matches nothing.
bool secret_matches(const std::string& expected, const std::string& given);

/// The external attempt token given to workers for (execution, secret,
/// internal token).
std::string external_token(const std::string& execution_id,
                           const std::string& secret, const std::string& token);

/// The parts of `external`, or nothing when it is malformed: no length
/// prefix, a prefix longer than 9 digits, a zero or wrong length, no secret
/// of `lease_secret_chars` hex digits, or an empty internal token.
std::optional<attempt_ref> parse_external_token(const std::string& external);

/// `external` with its secret blanked out, for messages and logs
/// ("5:ord-1:***:t-17"); a malformed token is shortened to its first 8
/// characters followed by "...".
std::string redacted(const std::string& external);

} // namespace cerebelum::actors
