#pragma once

// The node's CAF worker port as two children of bridge_sup:
//
// ```
//  "caf_gateway"  the worker gateway; CAF takes each worker's connection
//                 from the guard as one end of a socket pair (upstream.hpp):
//                 no port stands behind the guard
//  "caf_guard"    listens on --caf-host:--caf-port, checks every BASP frame
//                 a worker sends (guard.hpp) and relays to the current
//                 gateway (a restarted gateway takes the next connections)
// ```
//
// libcaf_io 0.17.6 crashes or reserves gigabytes on crafted BASP headers:
// the guard keeps those bytes away from libcaf_io. With the node's TLS
// files the guard speaks TLS to workers (and requires their certificates
// with a client CA); with tokens the gateway checks each registration's.
// The start says in the log how the port is secured, with a warning when
// it is beyond loopback without all of them.

#include <cstdint>
#include <string>
#include <vector>

#include "actors/task_api.hpp"
#include "src/bridges/caf/guard.hpp"
#include "src/bridges/caf/worker_gateway.hpp"
#include "supervision/child_spec.hpp"

namespace cerebelum::caf_guard {

/// The two child specs of the CAF worker port on `host:port`; `opts`
/// carries the guard's limits (its host, port and upstream are set here).
/// With tokens (`sec.auth`) and TLS with a client CA, both share one
/// peer_subjects: a worker's verified certificate is then a principal.
std::vector<supervision::child_spec>
caf_port_specs(std::string host, std::uint16_t port, actors::task_api_ptr tasks,
               guard_options opts = {}, actors::gateway_security sec = {});

/// A child "caf_guard" running a guard with `opts` for as long as it lives;
/// `tokens` says (in its start's log line) whether the gateway checks them.
supervision::child_spec guard_spec(guard_options opts, bool tokens = false);

} // namespace cerebelum::caf_guard
