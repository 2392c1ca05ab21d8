#pragma once

// The PEM files of a TLS listener (docs/security.md): gRPC's, HTTP's and
// the CAF worker port's, all from the node's --tls-cert, --tls-key and
// --tls-client-ca.

#include <string>

namespace cerebelum::api {

struct tls_files {
  /// The server's certificate chain and private key; empty: no TLS.
  std::string cert;
  std::string key;
  /// Client certificates must be signed by this CA (mutual TLS); empty:
  /// none are asked for.
  std::string client_ca;

  [[nodiscard]] bool enabled() const noexcept {
    return !cert.empty();
  }
};

} // namespace cerebelum::api
