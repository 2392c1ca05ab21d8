#pragma once

// Who may do what (docs/security.md): every gRPC method, HTTP route and
// CAF worker port message that carries a token declares the permission it
// needs in the one table of `endpoints()`; what is not in the table is
// refused (deny by default). tests/node/security_process_test.cpp walks the
// gRPC and HTTP entries against a real node, tests/cafworkers/
// caf_security_test.cpp the CAF ones.

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "src/auth/token.hpp"

namespace cerebelum::auth {

enum class permission : std::uint8_t {
  /// Anyone, without a token (health probes).
  open,
  /// Executions, histories, live events, workflows.
  read,
  /// Start executions (of the token's workflows when it names some).
  start,
  /// Approve and reject.
  decide,
  /// Cancel executions.
  cancel,
  /// List and retry dead letters (they hold inputs).
  dead_letters,
  /// Check and apply workflow upgrades (migrates executions).
  upgrade,
  /// Prometheus metrics.
  metrics,
  /// Create, list and revoke tokens.
  tokens,
  /// See and transfer who owns workflow names; a worker registering with
  /// it may replace a name another worker identity owns.
  ownership,
  /// The worker protocol: register, poll, heartbeat, complete (for the
  /// token's queues when it names some).
  work,
};

std::string_view to_string(permission p) noexcept;

/// Whether role `r` has permission `p`.
bool allows(role r, permission p) noexcept;

/// One entry of the table: a gRPC method ("AdminService/StartExecution") or
/// an HTTP route ("POST /v1/workflows/{name}/executions").
struct endpoint {
  std::string_view surface; ///< "grpc", "http" or "caf"
  std::string_view name;
  permission needs;
};

/// The table: every method and route of the node.
std::span<const endpoint> endpoints() noexcept;

/// What `name` on `surface` needs, or nothing when it is not in the table.
std::optional<permission> needed(std::string_view surface,
                                 std::string_view name) noexcept;

} // namespace cerebelum::auth
