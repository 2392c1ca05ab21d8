#pragma once

// TLS for the CAF port's guard (guard.hpp), which does its own socket I/O
// on one thread: OpenSSL runs over two memory buffers, so the guard moves
// ciphertext between the socket and the pipe and plaintext between the pipe
// and its BASP checks, and nothing in here blocks or touches a socket.
//
// ```
//  worker --ciphertext--> feed() --[SSL]--> read() --plaintext--> checks
//  worker <--ciphertext-- drain() <-[SSL]-- write() <--plaintext-- node
// ```
//
// The handshake runs inside read(): until it is done read() returns 0 and
// drain() has the server's handshake records to send. With a client CA the
// worker must present a certificate of that CA, or the handshake fails.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "src/bridges/tls_files.hpp"

namespace cerebelum::caf_guard {

/// A server's certificate and policy, shared by its connections.
class tls_server {
 public:
  /// Loads the files of `s`; fails naming the file that cannot be used.
  /// With `s.client_ca`, workers must present a certificate issued by that
  /// CA.
  static caf::expected<std::shared_ptr<tls_server>>
  make(const api::tls_files& s);

  ~tls_server();
  tls_server(const tls_server&) = delete;
  tls_server& operator=(const tls_server&) = delete;

 private:
  tls_server() = default;
  friend class tls_pipe;
  void* ctx_ = nullptr; // SSL_CTX
  /// Whether workers must present a certificate of a client CA.
  bool client_ca_ = false;
};

/// One TLS connection, server side.
class tls_pipe {
 public:
  explicit tls_pipe(const tls_server& server);
  ~tls_pipe();
  tls_pipe(const tls_pipe&) = delete;
  tls_pipe& operator=(const tls_pipe&) = delete;

  /// Ciphertext received from the peer.
  void feed(const std::uint8_t* data, std::size_t n);

  /// Ciphertext fed and not decrypted yet.
  std::size_t buffered_in() const;

  /// Decrypts into `out` (at most `n` bytes): the count (0 when more
  /// ciphertext is needed), or an error naming the TLS failure (a failed
  /// handshake, a bad record, or the peer's close_notify: `closed()`).
  caf::expected<std::size_t> read(std::uint8_t* out, std::size_t n);

  /// Encrypts up to `n` bytes of `in`: the count taken (0 before the
  /// handshake is done), or an error.
  caf::expected<std::size_t> write(const std::uint8_t* in, std::size_t n);

  /// Ciphertext waiting to be sent to the peer.
  std::size_t pending_out() const;

  /// Moves up to `n` bytes of that ciphertext into `out`; returns the count.
  std::size_t drain(std::uint8_t* out, std::size_t n);

  bool handshake_done() const;

  /// Whether the peer closed the TLS session (close_notify).
  bool closed() const noexcept {
    return closed_;
  }

  /// The subject of the peer's certificate in normal form
  /// (src/auth/cert_subject.hpp), once the handshake verified it against
  /// the server's client CA; "" without a client CA or a certificate.
  std::string peer_subject() const;

 private:
  void* ssl_ = nullptr; // SSL
  void* in_ = nullptr;  // BIO, owned by ssl_
  void* out_ = nullptr; // BIO, owned by ssl_
  bool client_ca_ = false;
  bool closed_ = false;
};

} // namespace cerebelum::caf_guard
