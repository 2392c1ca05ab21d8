#pragma once

#include <cstddef>
#include <string>

namespace CLI {
class App;
} // namespace CLI

namespace cerebelum::cli {

/// Options of `cerebelum node`.
struct node_options {
  /// Where the embedded store and the node's files live.
  std::string data_dir = ".cerebelum-data";
  /// "sqlite" (embedded, in the data dir) or a PostgreSQL URI.
  std::string store = "sqlite";
  /// What the embedded store's open verifies: "full" (PRAGMA
  /// integrity_check), "quick" (quick_check) or "none".
  std::string store_check = "full";
  /// The gRPC AdminService's address.
  std::string listen = "127.0.0.1:9740";
  /// The HTTP/JSON API's address; empty disables it.
  std::string http = "127.0.0.1:9741";
  /// The CAF port C++ workers join (src/caf_guard in front of
  /// src/bridges/caf/worker_gateway); 0: closed.
  int caf_port = 0;
  /// The interface of the CAF port (unauthenticated: loopback by default).
  std::string caf_host = "127.0.0.1";
  /// Directory of workflow files to load; empty: none.
  std::string workflows_dir;
  /// Seconds to wait for the supervision tree to stop before exiting
  /// without it (fractions allowed).
  double shutdown_timeout_s = 30;
  /// Largest input, approval data and step result or error, in bytes of
  /// JSON text (actors/payload_limit.hpp).
  std::size_t max_payload_bytes = 1'000'000;
  /// Seconds a worker keeps a task of a step without heartbeat_timeout
  /// without a heartbeat (actors::router_options::default_lease).
  double task_lease_s = 6;
  double admission_wait_s = 1;
  /// Times a lost attempt is offered again before it counts as a failure
  /// of its step (workflow::reoffer_policy).
  unsigned max_reoffers = 5;
  /// "none" or "token": whether every request must carry a token
  /// (docs/security.md).
  std::string auth = "none";
  /// PEM files of the gRPC listener's TLS; empty: no TLS.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  /// Listen beyond loopback without TLS and tokens (logged as a warning).
  bool insecure = false;
  /// Waiting requests (waits, follows, task polls) one token's principal
  /// may hold at once (api::principal_waits); counted with --auth token
  /// only.
  std::size_t max_waits_per_principal = 256;
  /// Whether workflows that workers register may call this node's native
  /// functions (actors::router_options::allow_worker_calls).
  bool allow_worker_calls = false;
};

/// Declares the options of `cerebelum node` on `cmd`.
void add_node_options(CLI::App& cmd, node_options& opts);

/// Runs a node until SIGINT or SIGTERM, then stops its supervision tree in
/// reverse start order. Returns the process exit code.
int run_node(const node_options& opts);

} // namespace cerebelum::cli
