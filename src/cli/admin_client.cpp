#include "src/cli/admin_client.hpp"

#include <iostream>

namespace cerebelum::cli {

namespace {

/// The status code as admin.proto spells it.
const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    default: return "ERROR";
  }
}

std::string unreachable_message(const std::string& server) {
  return "cannot reach a node at " + server + ": is `cerebelum node` running?";
}

} // namespace

admin_client::admin_client(std::string server) : server_(std::move(server)) {
  channel_ = grpc::CreateChannel(server_, grpc::InsecureChannelCredentials());
  stub_ = admin::AdminService::NewStub(channel_);
}

bool admin_client::connect(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::system_clock::now() + timeout;
  if (channel_->WaitForConnected(deadline)) return true;
  std::cerr << unreachable_message(server_) << '\n';
  return false;
}

std::unique_ptr<grpc::ClientContext>
admin_client::context(std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

int admin_client::fail(const grpc::Status& status) const {
  auto state = channel_->GetState(false);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE
      && state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_IDLE) {
    std::cerr << unreachable_message(server_) << '\n';
    return 1;
  }
  std::cerr << "error: " << code_name(status.error_code()) << ": "
            << status.error_message() << '\n';
  return 1;
}

} // namespace cerebelum::cli
