#pragma once

// The node side of C++ workers over CAF networking: an actor published on
// the node's CAF port (caf::io) that registers workers, pushes them leased
// tasks and relays their heartbeats and results to the task router. The
// protocol is wire/wire.hpp; docs/caf-workers.md shows the flows.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/task_api.hpp"
#include "src/auth/authenticator.hpp"
#include "src/auth/worker_owners.hpp"
#include "src/bridges/caf/peer_subjects.hpp"
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
/// publishes it on `host:port` with the system's middleman (port 0 picks a
/// free one); the start fails naming the address when the port cannot be
/// bound. The actor system must have loaded `caf::io::middleman`. The port
/// is closed when the gateway exits. When `published` is set, it holds the
/// bound port while the gateway runs and 0 after it exited (a restarted
/// gateway publishes again, on a new port when `port` is 0).
supervision::child_spec
worker_gateway_spec(std::string host, std::uint16_t port, task_api_ptr tasks,
                    std::shared_ptr<std::atomic<std::uint16_t>> published
                    = nullptr,
                    gateway_security sec = {});

} // namespace cerebelum::actors
