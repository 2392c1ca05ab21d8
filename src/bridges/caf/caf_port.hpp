#pragma once

// The node's CAF worker port as two children of bridge_sup:
//
// ```
//  "caf_gateway"  the worker gateway, published by CAF on 127.0.0.1 on an
//                 ephemeral port that only the guard connects to
//  "caf_guard"    listens on --caf-host:--caf-port, checks every BASP frame
//                 a worker sends (guard.hpp) and relays to the gateway's
//                 current port (a restarted gateway publishes on a new one)
// ```
//
// libcaf_io 0.17.6 crashes or reserves gigabytes on crafted BASP headers,
// and the port has no authentication: the guard keeps those bytes away
// from libcaf_io, and the start says in the log whether the port is on
// loopback (a warning when it is not). Mutual TLS is not wired yet.

#include <cstdint>
#include <string>
#include <vector>

#include "actors/task_api.hpp"
#include "src/bridges/caf/guard.hpp"
#include "supervision/child_spec.hpp"

namespace cerebelum::caf_guard {

/// The two child specs of the CAF worker port on `host:port`; `opts`
/// carries the guard's limits (its host, port and upstream are set here).
std::vector<supervision::child_spec>
caf_port_specs(std::string host, std::uint16_t port, actors::task_api_ptr tasks,
               guard_options opts = {});

/// A child "caf_guard" running a guard with `opts` for as long as it lives.
supervision::child_spec guard_spec(guard_options opts);

} // namespace cerebelum::caf_guard
