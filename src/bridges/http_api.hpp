#pragma once

// The HTTP/JSON API of a node (on src/bridges/http_server), mirroring the
// AdminService for curl users. Routes (see docs/api.md):
//
//   POST /v1/workflows/{name}/executions   body: input object; ?id= ?wait=
//   GET  /v1/executions                    ?status= &workflow= &page_size=
//                                          &page_token=
//   GET  /v1/executions/{id}
//   GET  /v1/executions/{id}/history       ?from_seq=
//   POST /v1/executions/{id}/approve       {"by": ..., "data": ...}
//   POST /v1/executions/{id}/reject        {"by": ..., "reason": ...}
//   POST /v1/executions/{id}/cancel        {"by": ..., "reason": ...}
//   GET  /v1/workflows
//
// Errors: {"error": {"code": "not_found", "message": "..."}} with 400, 404,
// 409, 413, 429, 504, 503 or 500.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "src/bridges/auth_gate.hpp"
#include "src/bridges/http_server.hpp"
#include "src/bridges/principal_waits.hpp"

namespace cerebelum::actors {
class engine_api;
} // namespace cerebelum::actors

namespace cerebelum::api {

/// Limits of the HTTP API.
struct http_options {
  /// Larger request bodies get 413 (this, not `server.max_body_bytes`).
  std::size_t max_body_bytes = 1 << 20;
  /// Threads, connection limit and timeouts of the server.
  http::server_options server;
  /// Checks every request's token (src/auth); null: every request is
  /// allowed (a node without --auth token).
  authenticator_ptr auth;
  /// Shown by GET /v1/health (e.g. what --insecure lets through).
  std::vector<std::string> warnings;
  /// Counts each principal's waiting requests (`?wait=true` starts and
  /// followed events) and refuses those beyond its limit with 429; null:
  /// none are counted.
  principal_waits_ptr waits;
};

/// A server (not yet listening) with every route of the API; requests still
/// pending when it stops (a `?wait=true` start) get 503 `unavailable`.
std::unique_ptr<http::server>
make_http_api(std::shared_ptr<actors::engine_api> engine,
              const http_options& opts);

} // namespace cerebelum::api
