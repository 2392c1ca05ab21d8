#pragma once

// The node side of C++ workers over CAF networking: an actor published on
// the node's CAF port (caf::io) that registers workers, pushes them leased
// tasks and relays their heartbeats and results to the task router. The
// protocol is wire/wire.hpp; docs/caf-workers.md shows the flows.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/task_api.hpp"
#include "supervision/child_spec.hpp"

namespace cerebelum::actors {

/// Spawns a gateway over `tasks` (not published).
caf::actor spawn_worker_gateway(caf::actor_system& sys, task_api_ptr tasks);

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
                    = nullptr);

} // namespace cerebelum::actors
