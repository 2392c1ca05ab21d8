// The HTTP server with TLS (src/bridges/http_server, server_options::tls):
// it answers HTTPS clients that trust its certificate, and a client that
// never handshakes, or speaks plain HTTP, is closed without crashing it or
// flooding the log.

#include <catch2/catch.hpp>

#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/bridges/http_api.hpp"
#include "tests/api/fake_engine.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/support/scratch.hpp"

using cerebelum::test::fake_engine;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace http = cerebelum::api::http;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// A self-signed certificate for 127.0.0.1 and its key (openssl req).
struct self_signed {
  cerebelum::test::temp_dir dir;
  std::filesystem::path cert = dir.path / "cert.pem";
  std::filesystem::path key = dir.path / "key.pem";

  self_signed() {
    auto cmd = "openssl req -x509 -newkey ec -pkeyopt "
               "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
               "/CN=localhost -addext "
               "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "
               + key.string() + " -out " + cert.string() + " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }

  [[nodiscard]] http::tls_pem pem() const {
    return {slurp(cert), slurp(key), {}};
  }
};

/// An HTTPS server of the API over a fake engine.
struct tls_fixture {
  self_signed certificate;
  std::shared_ptr<fake_engine> engine = std::make_shared<fake_engine>();
  std::unique_ptr<http::server> server;
  int port = 0;

  explicit tls_fixture(http::server_options opts = {}) {
    cerebelum::api::http_options api;
    api.server = opts;
    api.server.tls = certificate.pem();
    server = cerebelum::api::make_http_api(engine, api);
    auto err = server->listen("127.0.0.1", 0);
    REQUIRE_FALSE(err);
    port = server->port();
  }

  ~tls_fixture() {
    server->stop();
  }

  [[nodiscard]] std::unique_ptr<httplib::SSLClient> client() const {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    c->set_ca_cert_path(certificate.cert.string());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5, 0);
    c->set_read_timeout(5, 0);
    return c;
  }
};

/// Waits up to `within` for the server to close `fd`; how long that took.
std::optional<std::chrono::milliseconds>
closed_within(int fd, std::chrono::milliseconds within) {
  auto start = steady::now();
  while (steady::now() - start < within) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char tmp[4096];
    auto n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN))
      return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now()
                                                                   - start);
  }
  return std::nullopt;
}

} // namespace

TEST_CASE("an HTTPS server answers a client that trusts its certificate") {
  tls_fixture f;
  auto c = f.client();
  for (int i = 0; i < 3; ++i) {
    auto res = c->Get("/v1/workflows");
    REQUIRE(res);
    CHECK(res->status == 200);
  }
}

TEST_CASE("an HTTPS server closes a connection that never handshakes within "
          "the request timeout") {
  http::server_options opts;
  opts.request_timeout = 300ms;
  tls_fixture f{opts};
  int fd = cerebelum::test::connect_loopback(f.port);
  REQUIRE(fd >= 0);
  auto closed = closed_within(fd, 3000ms);
  ::close(fd);
  REQUIRE(closed);
  CHECK(*closed >= 250ms);
  // It still serves.
  auto res = f.client()->Get("/v1/workflows");
  REQUIRE(res);
  CHECK(res->status == 200);
}

TEST_CASE("an HTTPS server closes plain HTTP clients and logs their failed "
          "handshakes once a second at most") {
  auto sink = std::make_shared<cerebelum::test::log_capture>();
  {
    cerebelum::test::capture_log capture{sink};
    tls_fixture f;
    for (int i = 0; i < 50; ++i) {
      int fd = cerebelum::test::connect_loopback(f.port);
      REQUIRE(fd >= 0);
      std::string plain = "GET /v1/workflows HTTP/1.1\r\nHost: x\r\n\r\n";
      ::send(fd, plain.data(), plain.size(), MSG_NOSIGNAL);
      auto closed = closed_within(fd, 3000ms);
      ::close(fd);
      REQUIRE(closed);
    }
    auto res = f.client()->Get("/v1/workflows");
    REQUIRE(res);
    CHECK(res->status == 200);
  }
  auto lines = sink->count("TLS handshake");
  CHECK(lines >= 1);
  // 50 failures in well under a few seconds: a line a second at most.
  CHECK(lines <= 3);
}

TEST_CASE("an HTTPS streamed answer ends with its last chunk and the "
          "connection then takes the next request") {
  self_signed certificate;
  http::server_options opts;
  opts.tls = certificate.pem();
  http::server server{opts};
  server.route("GET", "/s", [](const http::request&, http::responder r) {
    http::response head;
    head.content_type = "text/event-stream";
    auto out = r.open_stream(head);
    for (const char* piece : {"first\n", "second\n", "third\n"})
      out.write(piece);
    out.end();
  });
  server.route("GET", "/plain", [](const http::request&, http::responder r) {
    http::response res;
    res.content_type = "text/plain";
    res.body = "ok";
    r.send(res);
  });
  REQUIRE_FALSE(server.listen("127.0.0.1", 0));
  httplib::SSLClient c{"127.0.0.1", server.port()};
  c.set_ca_cert_path(certificate.cert.string());
  c.enable_server_certificate_verification(true);
  c.set_keep_alive(true);
  c.set_read_timeout(5, 0);
  for (int round = 0; round < 3; ++round) {
    auto streamed = c.Get("/s");
    REQUIRE(streamed);
    CHECK(streamed->status == 200);
    CHECK(streamed->get_header_value("Transfer-Encoding") == "chunked");
    CHECK(streamed->body == "first\nsecond\nthird\n");
    auto plain = c.Get("/plain");
    REQUIRE(plain);
    CHECK(plain->status == 200);
    CHECK(plain->body == "ok");
  }
  // One connection served them all.
  CHECK(server.connections() == 1);
  server.stop();
}
