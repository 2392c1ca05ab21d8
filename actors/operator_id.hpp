#pragma once

// Who made an operator's decision (start, approve, reject, cancel, retry of
// a dead letter, migration), as the history records it.

#include <string>
#include <utility>

namespace cerebelum::actors {

/// The recorded author of an operator's decision: `by` is the authenticated
/// principal (a token's name) or, on a node without tokens, the name the
/// caller gave; `note` is, beside a principal, the name the caller typed
/// (`--by`, a body's `by`): shown, never checked.
struct operator_id {
  // Implicit from a name: the common case (no note) reads as a plain name.
  operator_id(std::string by_name) // NOLINT(google-explicit-constructor)
    : by(std::move(by_name)) {}
  operator_id(const char* by_name) // NOLINT(google-explicit-constructor)
    : by(by_name) {}
  operator_id(std::string by_name, std::string typed)
    : by(std::move(by_name)), note(std::move(typed)) {}

  std::string by;
  std::string note;
};

} // namespace cerebelum::actors
