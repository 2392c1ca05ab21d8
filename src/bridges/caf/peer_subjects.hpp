#pragma once

// Which verified client certificate each worker connection of the CAF port
// showed, for the gateway (docs/security.md, *Client certificates as
// principals*). The guard ends TLS and relays the plaintext to CAF over a
// socket pair of its own per worker (upstream.hpp); CAF knows a worker only
// by the node id its BASP client_handshake names. So the guard binds each
// verified connection to its certificate's subject once its TLS handshake
// is done, claims the node id its client_handshake names before a byte of
// it reaches libcaf_io, and unbinds both when the connection closes; the
// gateway looks up the node id of a registration that sent no token.
//
// ```
//  worker --TLS (cert CN=w)--> guard --socketpair--> CAF
//    bind("CN=w"); claim_node(N)        gateway: subject_of_node(N) -> "CN=w"
// ```
//
// CAF takes a second connection naming the node id of a connected node as
// an alternative route of that node (libcaf_io 0.17.6 `add_alternative`),
// so the messages of a connection that claimed another connection's node id
// would be taken for that node's. The guard refuses a handshake naming a
// node id that another live connection claimed, and every connection CAF
// has to workers is one of the guard's: there is no port behind the guard.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cerebelum::caf_guard {

/// Live bindings of the guard's connections to certificate subjects and
/// CAF node ids. Thread-safe.
class peer_subjects : public std::enable_shared_from_this<peer_subjects> {
 public:
  /// Keeps a connection bound until it is destroyed or reset.
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
    binding(std::shared_ptr<peer_subjects> owner, std::uint64_t id);

    std::shared_ptr<peer_subjects> owner_;
    std::uint64_t id_ = 0;
  };

  /// Binds a new connection to `subject` (normal form,
  /// src/auth/cert_subject.hpp).
  [[nodiscard]] binding bind(std::string subject);

  /// Claims CAF node id `node` (its serialized bytes) for the connection
  /// of `b` until `b` is reset; false when another live connection claimed
  /// it (or `b` binds nothing).
  [[nodiscard]] bool claim_node(binding& b, const std::string& node);

  /// The subject of the live connection that claimed CAF node id `node`
  /// (its serialized bytes), or "" when none did.
  [[nodiscard]] std::string subject_of_node(const std::string& node) const;

  /// Connections bound now.
  [[nodiscard]] std::size_t size() const;

 private:
  struct entry {
    std::string subject;
    /// The node id it claimed ("" until it claims one).
    std::string node;
  };

  void unbind(std::uint64_t id);

  mutable std::mutex mtx_;
  std::uint64_t last_id_ = 0;
  std::unordered_map<std::uint64_t, entry> bound_;
  /// Node id -> the connection that claimed it.
  std::unordered_map<std::string, std::uint64_t> nodes_;
};

using peer_subjects_ptr = std::shared_ptr<peer_subjects>;

} // namespace cerebelum::caf_guard
