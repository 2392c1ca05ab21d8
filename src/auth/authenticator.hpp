#pragma once

// Authentication and authorization of a request (docs/security.md): the
// token a client presents is looked up by its id, its secret checked
// against the stored scrypt hash, then its role against the permission the
// endpoint declares (permissions.hpp) and its scopes against the workflow
// or queues the request names.
//
// The slow hash runs once per token: a verified token is remembered (by the
// SHA-256 of its text) and its row is read again at most every
// `recheck_interval`, so that a revocation or an expiry takes effect within
// it on every node of the store; an expiry is also checked on every request.
//
// A caller without a token but with a verified client certificate (mutual
// TLS) is the principal bound to its subject (`token create
// --cert-subject`), looked up among the live rows and remembered the same
// way. A token, when sent, wins: the certificate is then not looked at.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/auth/permissions.hpp"
#include "src/auth/token.hpp"

namespace cerebelum::eventstore {
class event_store;
} // namespace cerebelum::eventstore

namespace cerebelum::auth {

/// An authenticated caller.
struct principal {
  /// The token's name: what events record as who did it.
  std::string name;
  role r = role::reader;
  std::string token_id;
  std::vector<std::string> queues;
  std::vector<std::string> workflows;
};

/// What a caller presented.
struct presented {
  /// A token's text ("" when none was sent).
  std::string_view token;
  /// The subject of the caller's verified client certificate in normal form
  /// (cert_subject.hpp), "" when it showed none.
  std::string_view cert_subject;
};

/// The answer to a request: allowed (with who, when someone presented a
/// token), or refused as unauthenticated (401) or forbidden (403).
struct verdict {
  enum class outcome : std::uint8_t { allowed, unauthenticated, forbidden };
  outcome result = outcome::allowed;
  std::string message;
  std::optional<principal> who;

  [[nodiscard]] bool ok() const noexcept {
    return result == outcome::allowed;
  }
};

/// What a request asks to touch, for the token's scopes.
struct request_scope {
  /// The workflow a start names ("" for none).
  std::string_view workflow;
  /// The queues a worker call names (empty for none).
  std::span<const std::string> queues;
};

class authenticator {
 public:
  using store_fn = std::function<eventstore::event_store*()>;
  using clock_fn = std::function<std::int64_t()>;

  /// `store` gives the node's store (null while it is not open: every
  /// request is then refused as unauthenticated, with a message saying so).
  explicit authenticator(store_fn store, clock_fn now_ms = {});

  /// Checks `credentials` (a token's text, "" when none was sent) for an
  /// endpoint that needs `p`, touching `scope`.
  verdict check(std::string_view credentials, permission p,
                const request_scope& scope = {});

  /// The same for endpoint `name` on `surface` (see permissions.hpp); an
  /// endpoint missing from the table is refused.
  verdict check(std::string_view surface, std::string_view name,
                std::string_view credentials, const request_scope& scope = {});

  /// Checks what a caller presented (a token, else a client certificate's
  /// subject) for an endpoint that needs `p`, touching `scope`.
  verdict check(const presented& creds, permission p,
                const request_scope& scope = {});

  /// The same for endpoint `name` on `surface`.
  verdict check(std::string_view surface, std::string_view name,
                const presented& creds, const request_scope& scope = {});

  /// Forgets every remembered token (after a revocation on this node).
  void forget(std::string_view token_id);

  /// How long a verified token is trusted before its row is read again.
  static constexpr std::chrono::milliseconds recheck_interval{5'000};
  /// Last use is written at most this often per token.
  static constexpr std::chrono::milliseconds touch_interval{60'000};

 private:
  struct entry {
    principal who;
    std::int64_t expires_at_ms = 0;
    std::int64_t checked_at_ms = 0;
    std::int64_t touched_at_ms = 0;
  };

  using cache = std::unordered_map<std::string, entry>;

  /// What `recall` found.
  enum class recalled : std::uint8_t { none, expired, fresh };

  /// Looks `key` up in `c`: `fresh` (and `who` set) when its row was read
  /// within `recheck_interval` (its last use is written when due);
  /// `expired` (and forgotten) when its expiry passed; else `none`: read
  /// the row again.
  recalled recall(cache& c, const std::string& key, std::int64_t now,
                  principal& who);

  /// Remembers row `r` as the principal of `key` in `c`, writes its last
  /// use when due, and allows.
  verdict remember(cache& c, const std::string& key,
                   const eventstore::token_row& r,
                   eventstore::event_store& store, std::int64_t now);

  /// The principal of `credentials`, or a refusal.
  verdict authenticate(std::string_view credentials, std::int64_t now);

  /// The principal bound to client certificate subject `subject`, or a
  /// refusal.
  verdict authenticate_subject(std::string_view subject, std::int64_t now);

  std::int64_t now() const;

  store_fn store_;
  clock_fn now_ms_;
  std::mutex mtx_;
  /// SHA-256 of a token's text -> what it proved.
  cache known_;
  /// Client certificate subject -> the principal bound to it.
  cache known_subjects_;
  /// Token id -> when a wrong secret was last presented for it: another try
  /// within a second is refused without hashing.
  std::unordered_map<std::string, std::int64_t> failed_;
  /// One slow hash at a time (each takes 32 MiB).
  std::mutex hash_mtx_;
};

/// The token in an `Authorization` value: the text after "Bearer " (any
/// case), or "" when the value is not a bearer credential.
std::string_view bearer_token(std::string_view authorization) noexcept;

} // namespace cerebelum::auth
