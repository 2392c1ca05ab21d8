#include "src/cli/admin_client.hpp"

#include <fstream>
#include <iostream>
#include <iterator>
#include <utility>

namespace cerebelum::cli {

namespace {

connection_settings& settings() {
  static connection_settings s;
  return s;
}

/// The text of `path`; false when it cannot be read.
bool read_file(const std::string& path, std::string& out) {
  std::ifstream in{path, std::ios::binary};
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>{in},
             std::istreambuf_iterator<char>{});
  return true;
}

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
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    default: return "ERROR";
  }
}

std::string unreachable_message(const std::string& server) {
  return "cannot reach a node at " + server + ": is `cerebelum node` running?";
}

} // namespace

std::string admin_client::default_by() {
  const auto& s = settings();
  return s.token.empty() && s.tls_cert.empty() ? "cli" : std::string{};
}

std::string admin_client::missing_by(const std::string& by) {
  if (!by.empty() || by_optional()) return {};
  return "--by NAME is required (your name, recorded) when the CLI has "
         "neither a token nor a client certificate";
}

std::string admin_client::configure(connection_settings given) {
  auto& s = settings();
  s.token = given.token;
  // Files are read here, so that a bad path is a usage error.
  for (auto [file, out] : {std::pair{&given.tls_ca, &s.tls_ca},
                           std::pair{&given.tls_cert, &s.tls_cert},
                           std::pair{&given.tls_key, &s.tls_key}}) {
    out->clear();
    if (!file->empty() && !read_file(*file, *out))
      return "cannot read '" + *file + "'";
  }
  if (s.tls_cert.empty() != s.tls_key.empty())
    return "--tls-cert and --tls-key go together";
  return {};
}

admin_client::admin_client(std::string server) : server_(std::move(server)) {
  const auto& s = settings();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (s.tls_ca.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = s.tls_ca;
    ssl.pem_private_key = s.tls_key;
    ssl.pem_cert_chain = s.tls_cert;
    creds = grpc::SslCredentials(ssl);
  }
  channel_ = grpc::CreateChannel(server_, creds);
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
  if (!settings().token.empty())
    ctx->AddMetadata("authorization", "Bearer " + settings().token);
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
