#pragma once

// API tokens (docs/security.md). A token is one text a client sends as
// `Authorization: Bearer <token>` (HTTP) or `authorization` metadata (gRPC):
//
// ```
//   cbm_<id: 16 hex digits>_<secret: 64 hex digits>
// ```
//
// The id is public (it names the token in `token list` and in logs); the
// secret is 256 random bits, shown once when the token is made. The store
// keeps only a salted scrypt hash of the secret.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/types.hpp"

namespace cerebelum::auth {

/// What a principal may do; `permission.hpp` says which role may what.
enum class role : std::uint8_t { admin, operator_, starter, reader, worker };

/// "admin", "operator", "starter", "reader" or "worker".
std::string_view to_string(role r) noexcept;

/// The role named `text`, or nothing.
std::optional<role> parse_role(std::string_view text) noexcept;

/// The parts of a token's text.
struct token_parts {
  std::string id;
  std::string secret;
};

/// The parts of `text`, or nothing when it is not a token's shape.
std::optional<token_parts> parse_token(std::string_view text);

/// A token just made: its text (shown once) and the row to store.
struct new_token {
  std::string text;
  eventstore::token_row row;
};

/// What a new token is for.
struct token_spec {
  std::string name;
  role r = role::reader;
  std::vector<std::string> queues;
  std::vector<std::string> workflows;
  /// 0: never expires.
  std::int64_t expires_at_ms = 0;
};

/// Makes a token with fresh random id and secret; the row holds the hash.
new_token make_token(const token_spec& spec, std::int64_t now_ms);

/// Makes the row of a principal with a fresh random id, bound to client
/// certificates of `subject` (normal form, cert_subject.hpp): no secret.
eventstore::token_row make_cert_principal(const token_spec& spec,
                                          std::string subject,
                                          std::int64_t now_ms);

/// The salted slow hash of `secret`, encoded with its parameters:
/// `$scrypt$ln=15,r=8,p=1$<salt hex>$<hash hex>`.
std::string hash_secret(std::string_view secret);

/// Whether `secret` hashes to `encoded` (constant time in the hash).
bool verify_secret(std::string_view secret, std::string_view encoded);

/// The wall clock in milliseconds since the epoch: the time tokens are
/// made, expire, are revoked and used at.
std::int64_t wall_clock_ms();

/// `bytes` random bytes from the system's CSPRNG, in lower-case hex.
std::string random_hex(std::size_t bytes);

/// SHA-256 of `text`, raw (32 bytes): the key of verified tokens in memory.
std::string sha256(std::string_view text);

} // namespace cerebelum::auth
