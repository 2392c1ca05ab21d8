#pragma once

// The node's network front ends as children of its bridge supervisor: each
// is a CAF actor that owns one server. The server starts in the child's
// start function (so a taken port fails the node's start with an error
// naming the address) and shuts down when the actor exits.

#include <memory>
#include <string>
#include <vector>

#include "actors/task_api.hpp"
#include "src/bridges/http_api.hpp"
#include "src/bridges/tls_files.hpp"
#include "supervision/child_spec.hpp"

namespace cerebelum::actors {
class engine_api;
} // namespace cerebelum::actors

namespace cerebelum::api {

/// Security of the gRPC server.
struct grpc_options {
  /// Checks every call's token; null: every call is allowed.
  authenticator_ptr auth;
  tls_files tls;
  /// Shown by AdminService/Health (e.g. what --insecure lets through).
  std::vector<std::string> warnings;
  /// Which token registered each worker id (shared with the CAF port);
  /// null: the WorkerService keeps its own.
  worker_owners_ptr owners;
  /// Counts each principal's waiting calls (WaitForResult,
  /// FollowExecution, PollTask), shared with the HTTP API; null: none are
  /// counted.
  principal_waits_ptr waits;
};

/// A child "grpc_server" serving the AdminService on `address` (HOST:PORT),
/// and the WorkerService when `tasks` is set.
supervision::child_spec
grpc_server_spec(std::string address,
                 std::shared_ptr<actors::engine_api> engine,
                 actors::task_api_ptr tasks = nullptr, grpc_options opts = {});

/// The text of file `path`, or an error naming it (for PEM files).
caf::expected<std::string> read_pem(const std::string& what,
                                    const std::string& path);

/// A child "http_server" serving the HTTP/JSON API on `address` (HOST:PORT):
/// HTTPS only when `tls` is enabled (the PEM files are read at its start).
supervision::child_spec
http_server_spec(std::string address,
                 std::shared_ptr<actors::engine_api> engine,
                 http_options opts = {}, tls_files tls = {});

/// Splits "HOST:PORT"; returns false when the port is missing or not a
/// number in 0..65535.
bool split_address(const std::string& address, std::string& host, int& port);

} // namespace cerebelum::api
