#pragma once

// Operators' commands (approve, reject, cancel) recorded as events: each is
// appended at the execution's next sequence number with the index row it
// implies; a conflict (the execution's actor appended first) reloads and
// tries again. The execution is woken afterwards and decides on it.

#include <string>

#include <caf/error.hpp>

#include "actors/engine_api.hpp"
#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// One operator's command.
struct operator_command {
  enum class kind { approve, reject, cancel };
  kind what = kind::approve;
  std::string by;
  json data;
  std::string reason;
};

inline operator_command make_approval(std::string by, json data) {
  return {operator_command::kind::approve, std::move(by), std::move(data), {}};
}

inline operator_command make_rejection(std::string by, std::string reason) {
  return {operator_command::kind::reject, std::move(by), {}, std::move(reason)};
}

inline operator_command make_cancellation(std::string by, std::string reason) {
  return {operator_command::kind::cancel, std::move(by), {}, std::move(reason)};
}

/// Records `cmd` for `id`. Errors: not_found, not_awaiting_approval,
/// already_terminal, unavailable, internal.
caf::error append_command(engine_context& ctx, const std::string& id,
                          const operator_command& cmd);

} // namespace cerebelum::actors
