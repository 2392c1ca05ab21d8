#include "sdk/cpp/tls_check.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace cerebelum::worker {

namespace {

std::string openssl_errors() {
  std::string text;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

struct fd_closer {
  int fd = -1;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

/// A blocking TCP connection to `host:port` with send and receive timeouts
/// of `timeout`; throws naming the address.
int connect_tcp(const tls_check_options& o) {
  auto where = o.host + ":" + std::to_string(o.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto service = std::to_string(o.port);
  if (int rc = ::getaddrinfo(o.host.c_str(), service.c_str(), &hints, &found);
      rc != 0)
    throw std::runtime_error("cannot resolve " + where + ": "
                             + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list{found, ::freeaddrinfo};
  std::string last = "no address";
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                      ai->ai_protocol);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    timeval tv{};
    tv.tv_sec = o.timeout.count() / 1000;
    tv.tv_usec = static_cast<suseconds_t>((o.timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    last = std::strerror(errno);
    ::close(fd);
  }
  throw std::runtime_error("cannot reach the node at " + where + ": " + last);
}

bool is_ip_address(const std::string& name) {
  in6_addr buf{};
  return ::inet_pton(AF_INET, name.c_str(), &buf) == 1
         || ::inet_pton(AF_INET6, name.c_str(), &buf) == 1;
}

} // namespace

void check_node_tls(const tls_check_options& o) {
  auto where = o.host + ":" + std::to_string(o.port);
  auto name = o.server_name.empty() ? o.host : o.server_name;
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx{
    SSL_CTX_new(TLS_client_method()), SSL_CTX_free};
  if (!ctx) throw std::runtime_error("TLS: " + openssl_errors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr)
      != 1)
    throw std::runtime_error("cannot use the CA file '" + o.ca_file
                             + "': " + openssl_errors());
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.cert_file.c_str())
        != 1)
      throw std::runtime_error("cannot use the client certificate '"
                               + o.cert_file + "': " + openssl_errors());
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.key_file.c_str(),
                                    SSL_FILETYPE_PEM)
          != 1
        || SSL_CTX_check_private_key(ctx.get()) != 1)
      throw std::runtime_error("cannot use the private key '" + o.key_file
                               + "' with '" + o.cert_file
                               + "': " + openssl_errors());
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  fd_closer sock{connect_tcp(o)};
  std::unique_ptr<SSL, void (*)(SSL*)> ssl{SSL_new(ctx.get()), SSL_free};
  if (!ssl) throw std::runtime_error("TLS: " + openssl_errors());
  if (is_ip_address(name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name.c_str());
  } else {
    SSL_set1_host(ssl.get(), name.c_str());
    SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  }
  SSL_set_fd(ssl.get(), sock.fd);
  if (SSL_connect(ssl.get()) != 1) {
    auto verify = SSL_get_verify_result(ssl.get());
    if (verify != X509_V_OK)
      throw std::runtime_error(
        "the node at " + where + " presented a certificate that "
        + (verify == X509_V_ERR_HOSTNAME_MISMATCH
               || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
             ? "does not name '" + name + "'"
             : std::string{"does not verify against '"} + o.ca_file
                 + "': " + X509_verify_cert_error_string(verify)));
    auto errors = openssl_errors();
    throw std::runtime_error("TLS handshake with the node at " + where
                             + " failed: "
                             + (errors.empty() ? "the connection was closed "
                                                 "(is its CAF port TLS?)"
                                               : errors));
  }
  // The node speaks first (its BASP handshake); a node that refuses the
  // client certificate sends an alert instead (TLS 1.3 says so only now).
  char byte = 0;
  int got = SSL_read(ssl.get(), &byte, 1);
  if (got <= 0) {
    auto err = SSL_get_error(ssl.get(), got);
    bool timed_out
      = err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (!timed_out) {
      auto errors = openssl_errors();
      throw std::runtime_error(
        "the node at " + where + " closed the TLS connection: "
        + (errors.empty() ? "it did not accept this worker" : errors)
        + (o.cert_file.empty() ? " (no client certificate was sent)" : ""));
    }
  }
  SSL_shutdown(ssl.get());
}

} // namespace cerebelum::worker
