#include "src/auth/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <stdexcept>

namespace cerebelum::auth {

namespace {

constexpr std::string_view token_prefix = "cbm_";
constexpr std::size_t id_hex = 16;
constexpr std::size_t secret_hex = 64;

// scrypt N = 2^15, r = 8, p = 1: 32 MiB and tens of milliseconds per hash.
constexpr int scrypt_log_n = 15;
constexpr int scrypt_r = 8;
constexpr int scrypt_p = 1;
constexpr std::size_t salt_bytes = 16;
constexpr std::size_t hash_bytes = 32;

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

bool is_hex(std::string_view text) {
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> from_hex(std::string_view text) {
  if (text.size() % 2 != 0 || !is_hex(text)) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    unsigned v = 0;
    std::from_chars(text.data() + i, text.data() + i + 2, v, 16);
    out += static_cast<char>(v);
  }
  return out;
}

/// scrypt of `secret` with `salt`; empty when OpenSSL refuses.
std::string scrypt(std::string_view secret, std::string_view salt, int log_n,
                   int r, int p) {
  std::array<unsigned char, hash_bytes> key{};
  std::uint64_t n = std::uint64_t{1} << log_n;
  // Memory scrypt needs: 128 * r * N bytes, plus slack.
  std::uint64_t maxmem = 128 * static_cast<std::uint64_t>(r) * n * 2;
  if (EVP_PBE_scrypt(secret.data(), secret.size(),
                     reinterpret_cast<const unsigned char*>(salt.data()),
                     salt.size(), n, static_cast<std::uint64_t>(r),
                     static_cast<std::uint64_t>(p), maxmem, key.data(),
                     key.size())
      != 1)
    return {};
  return std::string{reinterpret_cast<const char*>(key.data()), key.size()};
}

} // namespace

std::string_view to_string(role r) noexcept {
  switch (r) {
    case role::admin: return "admin";
    case role::operator_: return "operator";
    case role::starter: return "starter";
    case role::reader: return "reader";
    case role::worker: return "worker";
  }
  return "reader";
}

std::optional<role> parse_role(std::string_view text) noexcept {
  for (auto r : {role::admin, role::operator_, role::starter, role::reader,
                 role::worker})
    if (to_string(r) == text) return r;
  return std::nullopt;
}

std::optional<token_parts> parse_token(std::string_view text) {
  if (text.size() != token_prefix.size() + id_hex + 1 + secret_hex
      || text.substr(0, token_prefix.size()) != token_prefix)
    return std::nullopt;
  auto id = text.substr(token_prefix.size(), id_hex);
  auto sep = text[token_prefix.size() + id_hex];
  auto secret = text.substr(token_prefix.size() + id_hex + 1);
  if (sep != '_' || !is_hex(id) || !is_hex(secret)) return std::nullopt;
  return token_parts{std::string{id}, std::string{secret}};
}

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()),
                 static_cast<int>(bytes))
      != 1)
    throw std::runtime_error("the system's random number generator failed");
  return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), bytes);
}

std::string sha256(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned len = 0;
  EVP_Digest(text.data(), text.size(), md.data(), &len, EVP_sha256(), nullptr);
  return std::string{reinterpret_cast<const char*>(md.data()), len};
}

std::string hash_secret(std::string_view secret) {
  auto salt = *from_hex(random_hex(salt_bytes));
  auto key = scrypt(secret, salt, scrypt_log_n, scrypt_r, scrypt_p);
  if (key.empty()) throw std::runtime_error("scrypt failed");
  auto hex = [](const std::string& s) {
    return to_hex(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  return "$scrypt$ln=" + std::to_string(scrypt_log_n)
         + ",r=" + std::to_string(scrypt_r) + ",p=" + std::to_string(scrypt_p)
         + "$" + hex(salt) + "$" + hex(key);
}

bool verify_secret(std::string_view secret, std::string_view encoded) {
  // $scrypt$ln=L,r=R,p=P$salt$hash
  int log_n = 0;
  int r = 0;
  int p = 0;
  std::string text{encoded};
  char salt_hex[65] = {};
  char hash_hex[129] = {};
  if (std::sscanf(text.c_str(),
                  "$scrypt$ln=%d,r=%d,p=%d$%64[0-9a-f]$%128[0-9a-f]", &log_n,
                  &r, &p, salt_hex, hash_hex)
      != 5)
    return false;
  // Refuse parameters that would make a hash of a stored row unbounded.
  if (log_n < 10 || log_n > 20 || r < 1 || r > 16 || p < 1 || p > 4)
    return false;
  auto salt = from_hex(salt_hex);
  auto want = from_hex(hash_hex);
  if (!salt || !want || want->size() != hash_bytes) return false;
  auto got = scrypt(secret, *salt, log_n, r, p);
  return got.size() == want->size()
         && CRYPTO_memcmp(got.data(), want->data(), got.size()) == 0;
}

new_token make_token(const token_spec& spec, std::int64_t now_ms) {
  new_token out;
  auto id = random_hex(id_hex / 2);
  auto secret = random_hex(secret_hex / 2);
  out.text = std::string{token_prefix} + id + "_" + secret;
  out.row.id = id;
  out.row.name = spec.name;
  out.row.role = std::string{to_string(spec.r)};
  out.row.queues = spec.queues;
  out.row.workflows = spec.workflows;
  out.row.hash = hash_secret(secret);
  out.row.created_at_ms = now_ms;
  out.row.expires_at_ms = spec.expires_at_ms;
  return out;
}

eventstore::token_row make_cert_principal(const token_spec& spec,
                                          std::string subject,
                                          std::int64_t now_ms) {
  eventstore::token_row row;
  row.id = random_hex(id_hex / 2);
  row.name = spec.name;
  row.role = std::string{to_string(spec.r)};
  row.queues = spec.queues;
  row.workflows = spec.workflows;
  row.created_at_ms = now_ms;
  row.expires_at_ms = spec.expires_at_ms;
  row.cert_subject = std::move(subject);
  return row;
}

} // namespace cerebelum::auth
