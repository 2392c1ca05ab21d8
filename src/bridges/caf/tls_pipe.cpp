#include "src/bridges/caf/tls_pipe.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <climits>

#include "actors/errc.hpp"
#include "src/auth/cert_subject.hpp"

namespace cerebelum::caf_guard {

namespace {

SSL_CTX* ctx_of(void* p) {
  return static_cast<SSL_CTX*>(p);
}

SSL* ssl_of(void* p) {
  return static_cast<SSL*>(p);
}

BIO* bio_of(void* p) {
  return static_cast<BIO*>(p);
}

/// OpenSSL's queued errors as one line (and clears the queue).
std::string openssl_errors() {
  std::string text;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown TLS error" : text;
}

caf::error tls_error(const std::string& what) {
  return actors::make_error(actors::errc::unavailable, what);
}

int clamp_int(std::size_t n) {
  return static_cast<int>(std::min<std::size_t>(n, INT_MAX));
}

} // namespace

caf::expected<std::shared_ptr<tls_server>>
tls_server::make(const api::tls_files& s) {
  std::shared_ptr<tls_server> server{new tls_server};
  auto* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return tls_error("TLS: " + openssl_errors());
  server->ctx_ = ctx;
  server->client_ca_ = !s.client_ca.empty();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, s.cert.c_str()) != 1)
    return tls_error("cannot use the certificate '" + s.cert
                     + "' (--tls-cert): " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx, s.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return tls_error("cannot use the private key '" + s.key
                     + "' (--tls-key): " + openssl_errors());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return tls_error("the key '" + s.key + "' does not match the certificate '"
                     + s.cert + "'");
  if (!s.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, s.client_ca.c_str(), nullptr) != 1)
      return tls_error("cannot use the client CA '" + s.client_ca
                       + "' (--tls-client-ca): " + openssl_errors());
    if (auto* names = SSL_load_client_CA_file(s.client_ca.c_str()))
      SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
  }
  return server;
}

tls_server::~tls_server() {
  SSL_CTX_free(ctx_of(ctx_));
}

tls_pipe::tls_pipe(const tls_server& server) : client_ca_(server.client_ca_) {
  auto* ssl = SSL_new(ctx_of(server.ctx_));
  if (ssl == nullptr) throw std::runtime_error("TLS: " + openssl_errors());
  auto* in = BIO_new(BIO_s_mem());
  auto* out = BIO_new(BIO_s_mem());
  if (in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl);
    throw std::runtime_error("TLS: out of memory");
  }
  // An empty memory BIO asks for more instead of reporting an end.
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl, in, out);
  SSL_set_accept_state(ssl);
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
  ssl_ = ssl;
  in_ = in;
  out_ = out;
}

tls_pipe::~tls_pipe() {
  SSL_free(ssl_of(ssl_)); // frees both BIOs
}

void tls_pipe::feed(const std::uint8_t* data, std::size_t n) {
  while (n > 0) {
    auto put = BIO_write(bio_of(in_), data, clamp_int(n));
    if (put <= 0) throw std::runtime_error("TLS: cannot buffer input");
    data += put;
    n -= static_cast<std::size_t>(put);
  }
}

std::size_t tls_pipe::buffered_in() const {
  return BIO_ctrl_pending(bio_of(in_));
}

caf::expected<std::size_t> tls_pipe::read(std::uint8_t* out, std::size_t n) {
  if (closed_ || n == 0) return std::size_t{0};
  ERR_clear_error();
  auto got = SSL_read(ssl_of(ssl_), out, clamp_int(n));
  if (got > 0) return static_cast<std::size_t>(got);
  switch (SSL_get_error(ssl_of(ssl_), got)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return std::size_t{0};
    case SSL_ERROR_ZERO_RETURN:
      closed_ = true;
      return tls_error("the worker closed the TLS session");
    default: break;
  }
  auto verify = SSL_get_verify_result(ssl_of(ssl_));
  if (!handshake_done() && verify != X509_V_OK)
    return tls_error(std::string{"TLS handshake: client certificate: "}
                     + X509_verify_cert_error_string(verify));
  return tls_error((handshake_done() ? "TLS: " : "TLS handshake: ")
                   + openssl_errors());
}

caf::expected<std::size_t> tls_pipe::write(const std::uint8_t* in,
                                           std::size_t n) {
  if (!handshake_done() || n == 0) return std::size_t{0};
  ERR_clear_error();
  auto put = SSL_write(ssl_of(ssl_), in, clamp_int(n));
  if (put > 0) return static_cast<std::size_t>(put);
  switch (SSL_get_error(ssl_of(ssl_), put)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return std::size_t{0};
    default: return tls_error("TLS: " + openssl_errors());
  }
}

std::size_t tls_pipe::pending_out() const {
  return BIO_ctrl_pending(bio_of(out_));
}

std::size_t tls_pipe::drain(std::uint8_t* out, std::size_t n) {
  if (n == 0 || pending_out() == 0) return 0;
  auto got = BIO_read(bio_of(out_), out, clamp_int(n));
  return got > 0 ? static_cast<std::size_t>(got) : 0;
}

bool tls_pipe::handshake_done() const {
  return SSL_is_init_finished(ssl_of(ssl_)) == 1;
}

std::string tls_pipe::peer_subject() const {
  // Without a client CA no certificate is asked for, and none is verified.
  if (!client_ca_ || !handshake_done()
      || SSL_get_verify_result(ssl_of(ssl_)) != X509_V_OK)
    return {};
  return auth::subject_of(SSL_get0_peer_certificate(ssl_of(ssl_)));
}

} // namespace cerebelum::caf_guard
