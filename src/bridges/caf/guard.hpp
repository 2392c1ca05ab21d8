#pragma once

// The guard in front of the node's CAF worker port: it listens on the public
// address (--caf-host:--caf-port), and for every accepted connection opens
// one to the worker gateway (a socket pair whose other end CAF holds,
// upstream.hpp) and relays bytes both ways on one thread (poll). The worker ->
// node direction is checked frame by frame (basp_check.hpp) before libcaf_io
// sees a byte of it; a bad frame closes that connection only. The node ->
// worker direction is relayed as is (this node's libcaf_io writes it); the
// guard only follows its frames to learn which node actors the worker may
// address.
//
// ```
//  worker --TCP--> [guard: host:port] --socketpair--> [CAF BASP broker]
//          <------                   <-------------
//  accept: no gateway running (restarting) or connection cap reached -> close
//  worker closes / resets   -> inner closed: CAF sends down_msg at once
//  CAF closes the inner one -> worker's closed
//  bad frame, no handshake within handshake_timeout -> both closed, one
//  log line (rate-limited)
// ```
//
// With TLS (guard_options::tls) the worker side is encrypted: the guard
// decrypts what the worker sends before checking it and encrypts what the
// node sends (tls_pipe.hpp); a failed TLS handshake (no or a foreign client
// certificate) closes the connection before a byte reaches libcaf_io.
// With a client CA and `guard_options::peers`, the verified certificate's
// subject is bound to the connection before the first plaintext byte is
// relayed, with the CAF node id its handshake names, and unbound when the
// connection closes (peer_subjects.hpp): the gateway's way to a
// certificate's principal.
//
// Memory: two fixed buffers of `buffer_size` per connection (three, and
// OpenSSL's records of at most about two more, with TLS) and at most
// `max_connections` connections, so at most 2 * 64 KiB * 64 = 8 MiB with
// the defaults without TLS; a full buffer stops reading from its side
// (backpressure).
// Behind it, libcaf_io holds at most one payload (<= max_payload) per
// connection.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "src/bridges/caf/basp_check.hpp"
#include "src/bridges/caf/peer_subjects.hpp"
#include "src/bridges/caf/tls_pipe.hpp"
#include "src/bridges/caf/upstream.hpp"

namespace cerebelum::caf_guard {

/// What a guard listens on and how much it holds.
struct guard_options {
  /// The public interface and port (0 picks a free port).
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;

  /// How to reach the worker gateway (opened at every accept).
  upstream_ptr upstream;

  /// Connections relayed at once; more are accepted and closed at once.
  std::size_t max_connections = 64;

  /// Bytes buffered per direction and connection.
  std::size_t buffer_size = 64 * 1024;

  /// A connection must send a valid client_handshake within this time.
  std::chrono::milliseconds handshake_timeout{10000};

  /// Frame checks (the allow-list defaults to `worker_type_names()`).
  check_limits limits;

  /// TLS on the public side (tls_pipe.hpp): workers speak TLS to the guard,
  /// which checks and relays the plaintext; with a client CA only workers
  /// holding a certificate of it get a byte through.
  api::tls_files tls;

  /// With a client CA: where each connection's verified certificate
  /// subject is bound to the CAF node id its handshake names, for the
  /// gateway (peer_subjects.hpp); null: not told.
  peer_subjects_ptr peers;
};

/// Counters of a guard, for tests and logs.
struct guard_stats {
  std::uint64_t accepted = 0;
  std::uint64_t rejected_frames = 0;
  std::uint64_t refused_connections = 0;
};

/// A running guard: bound at `start`, relaying on its own thread until
/// `stop` or destruction.
class guard {
 public:
  /// Binds `opts.host:opts.port` and starts the relay thread; fails naming
  /// the address when it cannot bind. `on_fatal` runs (on the relay thread)
  /// if the relay loop dies of an exception.
  static caf::expected<std::unique_ptr<guard>>
  start(guard_options opts, std::function<void()> on_fatal);

  ~guard();

  guard(const guard&) = delete;
  guard& operator=(const guard&) = delete;

  /// The bound port.
  std::uint16_t port() const;

  /// The bound address as "HOST:PORT".
  const std::string& address() const;

  /// Whether the bound address is a loopback address.
  bool loopback() const;

  /// Stops the relay thread and closes every socket; idempotent.
  void stop();

  guard_stats stats() const;

  struct impl;

 private:
  explicit guard(std::unique_ptr<impl> ptr);

  std::unique_ptr<impl> impl_;
};

} // namespace cerebelum::caf_guard
