#pragma once

// The C++ worker's check of a node's TLS certificate before CAF connects.
//
// CAF 0.17's TLS (libcaf_openssl) verifies that the node's certificate
// chains to the configured CA, but not that it names the host the worker
// asked for, and it reports a failed handshake only as a failed connect.
// `check_node_tls` makes one TLS connection of its own to the node's CAF
// port first, with the same CA and client certificate, verifies the chain
// and the name, waits for the node's first bytes (a node that refuses the
// client certificate answers with an alert instead), and closes it. It
// throws `std::runtime_error` naming what is wrong.

#include <chrono>
#include <cstdint>
#include <string>

namespace cerebelum::worker {

struct tls_check_options {
  std::string host;
  std::uint16_t port = 0;
  /// The name the certificate must carry (a DNS name or an IP address).
  std::string server_name;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::chrono::milliseconds timeout{5'000};
};

/// Throws `std::runtime_error` when the node at `host:port` cannot be
/// reached over TLS, its certificate does not verify against `ca_file` or
/// does not name `server_name`, or it refuses the client certificate.
void check_node_tls(const tls_check_options& opts);

} // namespace cerebelum::worker
