#pragma once

// The node side of C++ workers over CAF networking: an actor that the
// node's CAF port (caf::io, behind the guard) hands each worker's
// connection to, and that registers workers, pushes them leased
// tasks and relays their heartbeats and results to the task router. The
// protocol is wire/wire.hpp; docs/caf-workers.md shows the flows.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/task_api.hpp"
#include "src/auth/authenticator.hpp"
#include "src/auth/worker_owners.hpp"
#include "src/bridges/caf/peer_subjects.hpp"
#include "src/bridges/caf/upstream.hpp"
#include "src/bridges/principal_waits.hpp"
#include "supervision/child_spec.hpp"

namespace cerebelum::actors {

/// Who may join as a worker. Without an authenticator every registration is
/// accepted (a node without `--auth token`).
struct gateway_security {
  /// Checks the token of each registration (entry "caf"
  /// "WorkerGateway/Register" of the permission table, with the queues the
  /// worker names), and again every `recheck_interval` while the worker
  /// stays: a revoked or expired token ends its session. A registration
  /// without a token is the principal of its connection's verified client
  /// certificate (`peers`), if it showed one.
  std::shared_ptr<auth::authenticator> auth;
  /// Which token registered each worker id (shared with gRPC); null: the
  /// gateway keeps its own.
  std::shared_ptr<auth::worker_owners> owners;
  std::chrono::milliseconds recheck_interval{5'000};
  /// The client certificate subjects of the guard's connections (null: no
  /// certificate is a principal).
  caf_guard::peer_subjects_ptr peers;
  /// Each principal's waiting requests (shared with HTTP and gRPC): a
  /// registered worker holds `max_in_flight` of its principal's places,
  /// and no worker may ask for more than the limit (null: not bounded).
  api::principal_waits_ptr waits;
};

/// Spawns a gateway over `tasks` (not published).
caf::actor spawn_worker_gateway(caf::actor_system& sys, task_api_ptr tasks,
                                gateway_security sec = {});

/// A child spec (id "caf_gateway", permanent) that spawns a gateway and
/// installs in `upstream`, while it runs, the way to hand it a connection:
/// one end of a socket pair that the system's middleman takes as a
/// connection it accepted (upstream.hpp). No port is bound. The actor
/// system must have loaded `caf::io::middleman`. A restarted gateway
/// installs its own; an exited one's is removed.
supervision::child_spec worker_gateway_spec(task_api_ptr tasks,
                                            caf_guard::upstream_ptr upstream,
                                            gateway_security sec = {});

} // namespace cerebelum::actors
