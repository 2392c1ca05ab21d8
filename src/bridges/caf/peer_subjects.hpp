#pragma once

// Which verified client certificate each worker connection of the CAF port
// showed, for the gateway (docs/security.md, *Client certificates as
// principals*). The guard ends TLS and relays the plaintext to the gateway
// over a loopback connection of its own per worker; CAF knows a worker only
// by the node id its handshake names, and the node's middleman answers
// which connection carries that node: its remote address is the guard's
// side of that inner connection. So the guard binds its inner connection's
// local address ("127.0.0.1:PORT") to the subject before a byte of it
// reaches libcaf_io, and unbinds it when the connection closes; the gateway
// looks the address up for a registration that sent no token.
//
// ```
//  worker --TLS (cert CN=w)--> guard 127.0.0.1:P --> CAF  (node N on P)
//    bind("127.0.0.1:P", "CN=w")       gateway: middleman (get, N)
//                                        -> ("127.0.0.1", P) -> "CN=w"
// ```
//
// A process that connects to the internal port directly (not through the
// guard) comes from an address nobody bound: it has no subject, and needs a
// token.
//
// CAF takes a second connection naming the node id of a connected node as
// an alternative route of that node (libcaf_io 0.17.6 `add_alternative`),
// and the middleman names one connection per node: the messages of a
// connection that claimed another connection's node id would be taken for
// that node's. So the guard claims each verified connection's node id here
// too, and refuses a handshake naming a node id that another live
// connection of the guard claimed.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cerebelum::caf_guard {

/// Live bindings of inner connection addresses to certificate subjects.
/// Thread-safe.
class peer_subjects : public std::enable_shared_from_this<peer_subjects> {
 public:
  /// Keeps an address bound until it is destroyed or reset.
  class binding {
   public:
    binding() = default;
    binding(binding&& other) noexcept;
    binding& operator=(binding&& other) noexcept;
    binding(const binding&) = delete;
    binding& operator=(const binding&) = delete;
    ~binding();

    /// Unbinds now (idempotent).
    void reset();

    [[nodiscard]] bool bound() const noexcept {
      return owner_ != nullptr;
    }

   private:
    friend class peer_subjects;
    binding(std::shared_ptr<peer_subjects> owner, std::string address);

    std::shared_ptr<peer_subjects> owner_;
    std::string address_;
  };

  /// Binds `address` ("HOST:PORT" of the guard's side of an inner
  /// connection) to `subject` (normal form, src/auth/cert_subject.hpp).
  [[nodiscard]] binding bind(std::string address, std::string subject);

  /// The subject bound to `address`, or "" when none is.
  [[nodiscard]] std::string subject_of(const std::string& address) const;

  /// Bindings held now.
  [[nodiscard]] std::size_t size() const;

  /// Claims CAF node id `node` (its serialized bytes) for the connection
  /// of `b` until `b` is reset; false when another live connection claimed
  /// it (or `b` binds nothing).
  [[nodiscard]] bool claim_node(binding& b, const std::string& node);

 private:
  void unbind(const std::string& address);

  mutable std::mutex mtx_;
  std::unordered_map<std::string, std::string> by_address_;
  /// Node id -> the address of the connection that claimed it.
  std::unordered_map<std::string, std::string> nodes_;
  /// Address -> the node id it claimed.
  std::unordered_map<std::string, std::string> node_of_;
};

using peer_subjects_ptr = std::shared_ptr<peer_subjects>;

} // namespace cerebelum::caf_guard
