#include "src/auth/permissions.hpp"

#include <array>

namespace cerebelum::auth {

namespace {

using p = permission;

constexpr std::array<endpoint, 41> table{{
  // gRPC AdminService (proto/admin.proto)
  {"grpc", "AdminService/StartExecution", p::start},
  {"grpc", "AdminService/DescribeExecution", p::read},
  {"grpc", "AdminService/ListExecutions", p::read},
  {"grpc", "AdminService/GetHistory", p::read},
  {"grpc", "AdminService/FollowExecution", p::read},
  {"grpc", "AdminService/WaitForResult", p::read},
  {"grpc", "AdminService/ListWorkflows", p::read},
  {"grpc", "AdminService/Approve", p::decide},
  {"grpc", "AdminService/Reject", p::decide},
  {"grpc", "AdminService/Cancel", p::cancel},
  {"grpc", "AdminService/ListDeadLetters", p::dead_letters},
  {"grpc", "AdminService/RetryDeadLetter", p::dead_letters},
  {"grpc", "AdminService/CheckUpgrade", p::upgrade},
  {"grpc", "AdminService/Health", p::open},
  {"grpc", "AdminService/CreateToken", p::tokens},
  {"grpc", "AdminService/ListTokens", p::tokens},
  {"grpc", "AdminService/RevokeToken", p::tokens},
  {"grpc", "AdminService/GetWorkflowOwner", p::ownership},
  {"grpc", "AdminService/TransferWorkflow", p::ownership},
  // gRPC WorkerService (proto/worker.proto)
  {"grpc", "WorkerService/Register", p::work},
  {"grpc", "WorkerService/PollTask", p::work},
  {"grpc", "WorkerService/Heartbeat", p::work},
  {"grpc", "WorkerService/CompleteTask", p::work},
  {"grpc", "WorkerService/Unregister", p::work},
  // The CAF worker port (wire/wire.hpp): the token travels in the
  // registration; the worker's later messages belong to that session.
  {"caf", "WorkerGateway/Register", p::work},
  // HTTP (docs/api.md)
  {"http", "POST /v1/workflows/{name}/executions", p::start},
  {"http", "GET /v1/executions", p::read},
  {"http", "GET /v1/executions/{id}", p::read},
  {"http", "GET /v1/executions/{id}/history", p::read},
  {"http", "GET /v1/executions/{id}/events", p::read},
  {"http", "GET /v1/workflows", p::read},
  {"http", "GET /v1/workflows/{name}/owner", p::ownership},
  {"http", "POST /v1/workflows/{name}/owner", p::ownership},
  {"http", "POST /v1/executions/{id}/approve", p::decide},
  {"http", "POST /v1/executions/{id}/reject", p::decide},
  {"http", "POST /v1/executions/{id}/cancel", p::cancel},
  {"http", "GET /v1/dead-letters", p::dead_letters},
  {"http", "POST /v1/dead-letters/{id}/retry", p::dead_letters},
  {"http", "POST /v1/workflows/check-upgrade", p::upgrade},
  {"http", "GET /v1/health", p::open},
  {"http", "GET /metrics", p::metrics},
}};

} // namespace

std::string_view to_string(permission x) noexcept {
  switch (x) {
    case p::open: return "open";
    case p::read: return "read";
    case p::start: return "start";
    case p::decide: return "decide";
    case p::cancel: return "cancel";
    case p::dead_letters: return "dead_letters";
    case p::upgrade: return "upgrade";
    case p::metrics: return "metrics";
    case p::tokens: return "tokens";
    case p::ownership: return "ownership";
    case p::work: return "work";
  }
  return "unknown";
}

bool allows(role r, permission x) noexcept {
  if (x == p::open) return true;
  switch (r) {
    case role::admin: return true;
    case role::operator_:
      return x == p::read || x == p::start || x == p::decide || x == p::cancel
             || x == p::dead_letters || x == p::metrics;
    case role::starter: return x == p::read || x == p::start;
    case role::reader: return x == p::read || x == p::metrics;
    case role::worker: return x == p::work;
  }
  return false;
}

std::span<const endpoint> endpoints() noexcept {
  return table;
}

std::optional<permission> needed(std::string_view surface,
                                 std::string_view name) noexcept {
  for (const auto& e : table)
    if (e.surface == surface && e.name == name) return e.needs;
  return std::nullopt;
}

} // namespace cerebelum::auth
