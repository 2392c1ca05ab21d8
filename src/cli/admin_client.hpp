#pragma once

// The CLI's connection to a node's AdminService. Included only by the CLI's
// command files (pulls in gRPC).

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "admin.grpc.pb.h"

namespace cerebelum::cli {

/// How the CLI's calls reach a node: TLS files and the token.
struct connection_settings {
  std::string token;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

/// A channel and stub to the node at `server` (HOST:PORT).
class admin_client {
 public:
  /// Sets how every client connects and authenticates (once, after the
  /// command line is parsed). Returns an error message when a file cannot
  /// be read.
  static std::string configure(connection_settings settings);

  /// The name a command records when the user gave no `--by`: "cli", or
  /// "" when the calls carry a token or a client certificate (the node
  /// then records that principal; a "cli" would only be a note beside it).
  static std::string default_by();
  /// Whether a command that records who decides may go without `--by`:
  /// only when its calls carry a token or a client certificate.
  static bool by_optional() {
    return default_by().empty();
  }
  /// The usage error of a command that records who decides when `by` is
  /// empty and not optional (see `by_optional`); "" when `by` will do.
  static std::string missing_by(const std::string& by);

  explicit admin_client(std::string server);

  /// Waits up to `timeout` for the channel to connect; prints "cannot reach
  /// a node at ..." to stderr and returns false when it does not.
  bool connect(std::chrono::milliseconds timeout = std::chrono::seconds{5});

  admin::AdminService::Stub& stub() {
    return *stub_;
  }

  /// A context whose deadline is `timeout` from now.
  static std::unique_ptr<grpc::ClientContext>
  context(std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// Prints a failed call to stderr (the node's code and message, or that it
  /// is unreachable) and returns the exit code 1.
  int fail(const grpc::Status& status) const;

 private:
  std::string server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<admin::AdminService::Stub> stub_;
};

} // namespace cerebelum::cli
