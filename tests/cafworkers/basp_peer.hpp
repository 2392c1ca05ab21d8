#pragma once

// A hostile CAF peer for the guard tests: a raw TCP connection that writes
// BASP bytes of the test's choosing, and builders of BASP frames.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/bridges/caf/basp_check.hpp"

namespace cerebelum::test {

using bytes = std::vector<std::uint8_t>;

/// A raw TCP connection to 127.0.0.1:`port`.
class raw_peer {
 public:
  /// Connects; `ok()` tells whether it worked.
  explicit raw_peer(int port);

  /// A connected socket to take over (closed with the peer).
  struct adopt {
    int fd;
  };

  /// Takes over `a.fd` (e.g. the guard's end of a connection to CAF).
  explicit raw_peer(adopt a);
  ~raw_peer();

  raw_peer(const raw_peer&) = delete;
  raw_peer& operator=(const raw_peer&) = delete;

  bool ok() const {
    return fd_ >= 0;
  }

  /// The local port (names this peer in the node's log).
  int local_port() const;

  /// Reads the server handshake frame; returns the published actor's id.
  std::optional<std::uint64_t>
  read_server_handshake(std::chrono::milliseconds timeout);

  /// Writes all of `data`; false when the connection is gone.
  bool send(const bytes& data);

  /// Ends the writing direction (the worker "closes").
  void shutdown_write();

  /// Reads and drops what arrives until the other side closes the
  /// connection (EOF or reset); false when `timeout` passes first.
  bool wait_closed(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
};

/// `hdr` followed by `payload`; `hdr.payload_len` is left as given.
bytes frame(const caf_guard::basp_header& hdr, const bytes& payload = {});

/// A node id as CAF serializes it: "default" atom, `pid`, 20-byte host id.
bytes node_id(std::uint32_t pid, std::uint8_t host_fill = 0xAB);

/// The client_handshake a CAF 0.17.6 worker sends first (flags 0).
bytes client_handshake(std::uint32_t pid = 4242);

/// `hdr` with `payload_len` set to the size of `payload`, then `payload`.
bytes sized_frame(caf_guard::basp_header hdr, const bytes& payload);

/// Appends `more` to `x`.
void append(bytes& x, const bytes& more);

/// A BASP message payload: no forwarding stack, object number 0, the
/// message's type name `types`, then `values` as serialized.
bytes message_payload(const std::string& types, const bytes& values = {});

} // namespace cerebelum::test
