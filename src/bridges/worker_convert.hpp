#pragma once

// The worker protocol's messages (proto/worker.proto) to and from the task
// router's facade (actors/task_api.hpp), for both transports that speak the
// protocol: the gRPC WorkerService (worker_service.cpp) and the CAF worker
// gateway (caf/worker_gateway.cpp). `route_of` is the one table of how a
// task error reaches a client of either.

#include <cstdint>

#include <caf/error.hpp>
#include <grpcpp/support/status.h>

#include "actors/task_api.hpp"
#include "proto/worker.pb.h"
#include "wire/wire.hpp"

namespace cerebelum::api {

/// How a task error reaches the clients of each transport.
struct error_route {
  grpc::StatusCode grpc;
  wire::errc wire;
};

/// The table: every `task_errc` with its gRPC status code (the list at the
/// top of proto/worker.proto) and its CAF port error (wire/wire.hpp).
error_route route_of(actors::task_errc code) noexcept;

/// The gRPC status of `err`: its code per `route_of`, the message
/// "<task code>: <message>".
grpc::Status to_status(const actors::task_error& err);

/// The CAF port's error for `err`: its code per `route_of`; the message,
/// prefixed with the task code's name when the wire code does not carry it.
caf::error to_wire_error(const actors::task_error& err);

/// The registration a worker asks for.
actors::worker_registration to_registration(const worker::RegisterRequest& req);

/// The outcome `req` reports, or `invalid_argument` when it names none.
actors::task_result<actors::task_outcome>
to_outcome(const worker::CompleteTaskRequest& req);

worker::RegisterResponse to_proto(const actors::registration_info& x);

worker::Task to_proto(const actors::leased_task& x);

worker::HeartbeatResponse to_proto(const actors::heartbeat_info& x);

worker::CompleteTaskResponse to_proto(const actors::complete_info& x);

/// The answer to an unregistration that handed back `requeued` tasks.
worker::UnregisterResponse unregistered(std::uint32_t requeued);

} // namespace cerebelum::api
