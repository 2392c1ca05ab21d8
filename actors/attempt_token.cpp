#include "actors/attempt_token.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace cerebelum::actors {

namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

} // namespace

std::string new_lease_secret() {
  std::array<unsigned char, lease_secret_chars / 2> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    throw std::runtime_error("attempt token: the CSPRNG failed");
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(lease_secret_chars);
  for (auto b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

bool secret_matches(const std::string& expected, const std::string& given) {
  if (expected.empty() || expected.size() != given.size()) return false;
  return CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}

std::string external_token(const std::string& execution_id,
                           const std::string& secret,
                           const std::string& token) {
  return std::to_string(execution_id.size()) + ":" + execution_id + ":" + secret
         + ":" + token;
}

std::optional<attempt_ref> parse_external_token(const std::string& external) {
  auto colon = external.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 9)
    return std::nullopt;
  std::size_t len = 0;
  for (std::size_t i = 0; i < colon; ++i) {
    if (external[i] < '0' || external[i] > '9') return std::nullopt;
    len = len * 10 + static_cast<std::size_t>(external[i] - '0');
  }
  auto start = colon + 1;
  if (len == 0 || start + len >= external.size()
      || external[start + len] != ':')
    return std::nullopt;
  auto secret_at = start + len + 1;
  // The secret, its ':' and at least one character of internal token.
  if (secret_at + lease_secret_chars + 1 >= external.size()
      || external[secret_at + lease_secret_chars] != ':')
    return std::nullopt;
  for (std::size_t i = 0; i < lease_secret_chars; ++i)
    if (!is_hex(external[secret_at + i])) return std::nullopt;
  return attempt_ref{external.substr(start, len),
                     external.substr(secret_at, lease_secret_chars),
                     external.substr(secret_at + lease_secret_chars + 1)};
}

std::string redacted(const std::string& external) {
  auto ref = parse_external_token(external);
  if (!ref)
    return external.size() <= 8 ? external : external.substr(0, 8) + "...";
  return std::to_string(ref->execution_id.size()) + ":" + ref->execution_id
         + ":***:" + ref->token;
}

} // namespace cerebelum::actors
