#pragma once

// How the engine's errors (actors/errc.hpp) reach clients of each transport.

#include <string>

#include "actors/errc.hpp"

namespace cerebelum::api {

/// The HTTP status of an engine error: 400 invalid_argument, 404 not_found
/// and unknown_workflow, 409 not_awaiting_approval and already_terminal, 413
/// payload_too_large, 504
/// deadline_exceeded, 503 unavailable, 500 otherwise.
int http_status_of(actors::errc code);

/// The gRPC status code (as its numeric value) of an engine error, as
/// documented at the top of proto/admin.proto.
int grpc_code_of(actors::errc code);

} // namespace cerebelum::api
