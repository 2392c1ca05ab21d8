#include "src/bridges/error_mapping.hpp"

#include <grpcpp/support/status_code_enum.h>

namespace cerebelum::api {

using actors::errc;

int http_status_of(errc code) {
  switch (code) {
    case errc::invalid_argument: return 400;
    case errc::not_found:
    case errc::unknown_workflow: return 404;
    case errc::not_awaiting_approval:
    case errc::already_terminal:
    case errc::incompatible:
    case errc::not_transferable:
    case errc::not_retryable: return 409;
    case errc::payload_too_large: return 413;
    case errc::overloaded: return 429;
    case errc::unauthenticated: return 401;
    case errc::permission_denied: return 403;
    case errc::deadline_exceeded: return 504;
    case errc::unavailable:
    case errc::data_dir_locked:
    case errc::data_dir_unusable: return 503;
    default: return 500;
  }
}

int grpc_code_of(errc code) {
  switch (code) {
    case errc::none: return grpc::StatusCode::OK;
    case errc::invalid_argument:
    case errc::payload_too_large: return grpc::StatusCode::INVALID_ARGUMENT;
    case errc::not_found:
    case errc::unknown_workflow: return grpc::StatusCode::NOT_FOUND;
    case errc::not_awaiting_approval:
    case errc::already_terminal:
    case errc::incompatible:
    case errc::not_transferable:
    case errc::not_retryable: return grpc::StatusCode::FAILED_PRECONDITION;
    case errc::deadline_exceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case errc::store_damaged: return grpc::StatusCode::DATA_LOSS;
    case errc::overloaded: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case errc::unauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case errc::permission_denied: return grpc::StatusCode::PERMISSION_DENIED;
    case errc::unavailable:
    case errc::data_dir_locked:
    case errc::data_dir_unusable: return grpc::StatusCode::UNAVAILABLE;
    default: return grpc::StatusCode::INTERNAL;
  }
}

} // namespace cerebelum::api
