#pragma once

// The HTTP/JSON API of a node (cpp-httplib), mirroring the AdminService for
// curl users. Routes (see docs/api.md):
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
// 409, 413, 504, 503 or 500.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>

namespace httplib {
class Server;
} // namespace httplib

namespace cerebelum::actors {
class engine_api;
} // namespace cerebelum::actors

namespace cerebelum::api {

/// Limits of the HTTP API.
struct http_options {
  /// Larger request bodies get 413.
  std::size_t max_body_bytes = 1 << 20;
  /// Set when the server stops; ends pending `?wait=true` requests.
  std::shared_ptr<std::atomic<bool>> stopping;
};

/// Installs every route of the API, the JSON error handler and the body
/// limit on `server`.
void install_http_api(httplib::Server& server,
                      std::shared_ptr<actors::engine_api> engine,
                      const http_options& opts);

} // namespace cerebelum::api
