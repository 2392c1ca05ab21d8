// The CAF guard in-process, relaying to plain TCP listeners that stand in
// for the worker gateway (in plain TCP and with TLS and client
// certificates), and the gateway spec's hand-over of connections across
// restarts.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "src/bridges/caf/guard.hpp"
#include "src/bridges/caf/worker_gateway.hpp"
#include "tests/cafworkers/basp_peer.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/log_capture.hpp"
#include "tests/support/scratch.hpp"
#include "wire/wire.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
namespace cg = cerebelum::caf_guard;

namespace {

/// A loopback listener standing in for the worker gateway (CAF's side).
class fake_upstream {
 public:
  fake_upstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 16);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }

  ~fake_upstream() {
    for (auto fd : accepted_)
      ::close(fd);
    ::close(fd_);
  }

  /// Accepts one relayed connection and reads `n` bytes from it; returns
  /// its socket and the bytes (fewer when it timed out or closed).
  std::pair<int, bytes> accept_and_read(std::size_t n) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) return {-1, {}};
    int fd = ::accept(fd_, nullptr, nullptr);
    accepted_.push_back(fd);
    return {fd, read(fd, n)};
  }

  /// Reads `n` bytes from the relayed connection `fd` (fewer when it timed
  /// out or closed).
  static bytes read(int fd, std::size_t n) {
    bytes out(n);
    std::size_t got = 0;
    while (got < n) {
      pollfd in{fd, POLLIN, 0};
      if (::poll(&in, 1, 5000) <= 0) break;
      auto r = ::recv(fd, out.data() + got, n - got, 0);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
  }

  /// Waits until the guard closes the relayed connection `fd`.
  static bool closed(int fd) {
    pollfd pfd{fd, POLLIN, 0};
    std::uint8_t buf[256];
    for (;;) {
      if (::poll(&pfd, 1, 5000) <= 0) return false;
      if (::recv(fd, buf, sizeof(buf), 0) <= 0) return true;
    }
  }

  /// Closes the relayed connection `fd` (as CAF would).
  void close(int fd) {
    ::shutdown(fd, SHUT_RDWR);
  }

  std::uint16_t port = 0;

 private:
  int fd_ = -1;
  std::vector<int> accepted_;
};

/// Opens a TCP connection to 127.0.0.1:`port` for the guard (as the
/// gateway's socket pair would be: connected, nonblocking).
int connect_upstream(std::uint16_t port, std::string& why) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0
      || ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    why = "cannot reach the fake upstream";
    if (fd >= 0) ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

struct guard_fixture {
  cg::upstream_ptr upstream = std::make_shared<cg::upstream>();

  /// The guard's next connections go to the fake upstream on `port`; 0: to
  /// no one (as while the gateway restarts).
  void relay_to(std::uint16_t port) {
    if (port == 0) {
      upstream->clear(1);
      return;
    }
    upstream->set(1, [port](std::string& why) {
      return connect_upstream(port, why);
    });
  }

  std::unique_ptr<cg::guard> start(cg::guard_options opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.upstream = upstream;
    auto g = cg::guard::start(std::move(opts), [] {});
    REQUIRE(g);
    return std::move(*g);
  }
};

/// `cerebelum dev-certs` certificates: ca.pem, node.pem + .key, and the
/// client certificates client.pem + .key and client-intruder.pem + .key,
/// all of the one CA.
struct dev_certs {
  temp_dir dir;

  dev_certs() {
    child_process gen{
      {CEREBELUM_BIN, "dev-certs", dir.path.string(), "--client", "intruder"}};
    auto code = gen.wait_exit(60s);
    INFO(gen.output());
    REQUIRE(code == 0);
  }

  [[nodiscard]] std::string pem(const std::string& name) const {
    return (dir.path / name).string();
  }

  /// The guard's TLS: the node's certificate, client certificates of the
  /// CA required.
  [[nodiscard]] cerebelum::api::tls_files server() const {
    return {pem("node.pem"), pem("node.key"), pem("ca.pem")};
  }
};

/// A worker's TLS connection to the guard, with client certificate
/// `client` (a dev_certs name such as "client"): OpenSSL over the socket,
/// blocking but for `wait_closed`, writing BASP bytes of the test's choice
/// as raw_peer does in plain TCP.
class tls_peer {
 public:
  tls_peer(int port, const dev_certs& certs, const std::string& client)
    : fd_(connect_loopback(port)) {
    if (fd_ < 0) return;
    // A guard that never answers fails the test instead of hanging it.
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr
        || SSL_CTX_load_verify_locations(ctx_, certs.pem("ca.pem").c_str(),
                                         nullptr)
             != 1
        || SSL_CTX_use_certificate_chain_file(
             ctx_, certs.pem(client + ".pem").c_str())
             != 1
        || SSL_CTX_use_PrivateKey_file(ctx_, certs.pem(client + ".key").c_str(),
                                       SSL_FILETYPE_PEM)
             != 1)
      return;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ssl_ = SSL_new(ctx_);
    if (ssl_ == nullptr) return;
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    SSL_set_fd(ssl_, fd_);
    ready_ = SSL_connect(ssl_) == 1;
  }

  ~tls_peer() {
    // No close_notify: a worker that dies just closes its socket, and
    // writing to one the guard closed could raise SIGPIPE.
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }

  tls_peer(const tls_peer&) = delete;
  tls_peer& operator=(const tls_peer&) = delete;

  /// Whether the TLS handshake succeeded (the server verified).
  [[nodiscard]] bool ok() const {
    return ready_;
  }

  /// Encrypts and writes all of `data`; false when the connection is gone.
  bool send(const bytes& data) {
    if (!ready_) return false;
    std::size_t done = 0;
    while (done < data.size()) {
      ERR_clear_error();
      auto n = SSL_write(ssl_, data.data() + done,
                         static_cast<int>(data.size() - done));
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// Reads and drops what arrives until the guard closes the connection;
  /// false when `timeout` passes first.
  bool wait_closed(std::chrono::milliseconds timeout) {
    if (!ready_) return false;
    // Non-blocking from here: a record that holds no data (a TLS 1.3
    // session ticket) must not make SSL_read wait past the deadline.
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::uint8_t sink[4096];
    for (;;) {
      ERR_clear_error();
      auto n = SSL_read(ssl_, sink, sizeof(sink));
      if (n > 0) continue;
      if (SSL_get_error(ssl_, n) != SSL_ERROR_WANT_READ) return true;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      pollfd pfd{fd_, POLLIN, 0};
      if (left.count() <= 0
          || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
        return false;
    }
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ready_ = false;
};

} // namespace

TEST_CASE_METHOD(guard_fixture, "the guard relays to the worker gateway "
                                "that runs now after a restart") {
  fake_upstream first;
  fake_upstream second;
  auto g = start();
  relay_to(first.port);
  raw_peer a{g->port()};
  REQUIRE(a.send(client_handshake(1)));
  CHECK(first.accept_and_read(64).second == client_handshake(1));
  // The gateway restarted: the next connections go to its successor.
  relay_to(second.port);
  raw_peer b{g->port()};
  REQUIRE(b.send(client_handshake(2)));
  CHECK(second.accept_and_read(64).second == client_handshake(2));
  // Between exit and restart: refused at once.
  relay_to(0);
  raw_peer c{g->port()};
  CHECK(c.wait_closed(5s));
  CHECK(g->stats().refused_connections == 1);
}

TEST_CASE_METHOD(guard_fixture, "a worker's closed connection closes the "
                                "inner one at once, and the other way round") {
  fake_upstream inner;
  relay_to(inner.port);
  auto g = start();
  int relayed = -1;
  {
    raw_peer worker{g->port()};
    REQUIRE(worker.send(client_handshake()));
    auto [fd, data] = inner.accept_and_read(64);
    REQUIRE(data.size() == 64);
    relayed = fd;
  } // the worker dies: its socket closes
  CHECK(fake_upstream::closed(relayed));
  raw_peer worker{g->port()};
  REQUIRE(worker.send(client_handshake()));
  auto [fd, data] = inner.accept_and_read(64);
  REQUIRE(data.size() == 64);
  inner.close(fd); // CAF drops the connection
  CHECK(worker.wait_closed(5s));
}

TEST_CASE_METHOD(guard_fixture, "a connection that sends no client_handshake "
                                "is closed after the handshake timeout") {
  fake_upstream inner;
  relay_to(inner.port);
  cg::guard_options opts;
  opts.handshake_timeout = 200ms;
  auto g = start(opts);
  auto begin = std::chrono::steady_clock::now();
  raw_peer silent{g->port()};
  REQUIRE(silent.ok());
  CHECK(silent.wait_closed(5s));
  CHECK(std::chrono::steady_clock::now() - begin >= 150ms);
  CHECK(g->stats().rejected_frames == 1);
}

TEST_CASE_METHOD(guard_fixture, "connections beyond the cap are closed at "
                                "once and a freed slot is used again") {
  fake_upstream inner;
  relay_to(inner.port);
  cg::guard_options opts;
  opts.max_connections = 2;
  auto g = start(opts);
  auto a = std::make_unique<raw_peer>(g->port());
  raw_peer b{g->port()};
  REQUIRE(a->send(client_handshake(1)));
  REQUIRE(b.send(client_handshake(2)));
  auto one = inner.accept_and_read(64);
  auto two = inner.accept_and_read(64);
  REQUIRE(one.second.size() == 64);
  REQUIRE(two.second.size() == 64);
  raw_peer over{g->port()};
  CHECK(over.wait_closed(5s));
  CHECK(g->stats().refused_connections == 1);
  // a leaves; once the guard closed its inner connection, its slot is free.
  a.reset();
  auto a_inner = one.second == client_handshake(1) ? one.first : two.first;
  REQUIRE(fake_upstream::closed(a_inner));
  raw_peer next{g->port()};
  REQUIRE(next.send(client_handshake(3)));
  CHECK(inner.accept_and_read(64).second == client_handshake(3));
  CHECK(g->stats().refused_connections == 1);
}

TEST_CASE_METHOD(guard_fixture,
                 "with client certificates the guard refuses a connection "
                 "naming the CAF node id of a live one until that one "
                 "closed") {
  dev_certs certs;
  fake_upstream inner;
  relay_to(inner.port);
  // Installed before the guard starts and restored after it stopped: its
  // thread logs through the default logger.
  auto sink = std::make_shared<log_capture>();
  capture_log capture{sink};
  cg::guard_options opts;
  opts.tls = certs.server();
  opts.peers = std::make_shared<cg::peer_subjects>();
  auto g = start(opts);
  cg::basp_header beat;
  beat.operation = static_cast<std::uint8_t>(cg::basp_op::heartbeat);
  const auto heartbeat = frame(beat);

  // A names node id N (pid 1): relayed.
  auto a = std::make_unique<tls_peer>(g->port(), certs, "client");
  REQUIRE(a->ok());
  REQUIRE(a->send(client_handshake(1)));
  auto [a_inner, a_bytes] = inner.accept_and_read(64);
  REQUIRE(a_bytes == client_handshake(1));

  // B, another certificate of the CA, names N while A is live: its relayed
  // connection closes without a byte of the handshake.
  {
    tls_peer b{g->port(), certs, "client-intruder"};
    REQUIRE(b.ok());
    REQUIRE(b.send(client_handshake(1)));
    CHECK(b.wait_closed(5s));
    auto [b_inner, b_bytes] = inner.accept_and_read(64);
    CHECK(b_inner >= 0);
    CHECK(b_bytes.empty());
    CHECK(fake_upstream::closed(b_inner));
  }
  CHECK(g->stats().rejected_frames == 1);
  CHECK(sink->count("client_handshake names the CAF node id of another live "
                    "connection")
        == 1);
  // A still relays.
  REQUIRE(a->send(heartbeat));
  CHECK(fake_upstream::read(a_inner, heartbeat.size()) == heartbeat);

  // Another node id (pid 2) from the same certificate as A: relayed.
  tls_peer c{g->port(), certs, "client"};
  REQUIRE(c.ok());
  REQUIRE(c.send(client_handshake(2)));
  CHECK(inner.accept_and_read(64).second == client_handshake(2));

  // A leaves; once the guard closed its relayed connection, N is free: the
  // worker may reconnect.
  a.reset();
  REQUIRE(fake_upstream::closed(a_inner));
  tls_peer d{g->port(), certs, "client"};
  REQUIRE(d.ok());
  REQUIRE(d.send(client_handshake(1)));
  CHECK(inner.accept_and_read(64).second == client_handshake(1));
  CHECK(g->stats().rejected_frames == 1);
}

TEST_CASE("a restarted worker gateway publishes its new port and the old "
          "one's exit does not clear it") {
  caf::actor_system_config cfg;
  cerebelum::wire::add_wire_types(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto up = std::make_shared<cg::upstream>();
  auto spec = cerebelum::actors::worker_gateway_spec(nullptr, up);
  // The actor a connection opened now reaches: CAF's server handshake on
  // it names the gateway it was handed to.
  auto reached = [&]() -> std::optional<std::uint64_t> {
    std::string why;
    int fd = up->open(why);
    if (fd < 0) return std::nullopt;
    raw_peer conn{raw_peer::adopt{fd}};
    return conn.read_server_handshake(5s);
  };
  CHECK_FALSE(up->ready());
  auto old_gw = spec.start(sys, caf::message{});
  REQUIRE(old_gw);
  CHECK(reached() == old_gw->id());
  auto new_gw = spec.start(sys, caf::message{});
  REQUIRE(new_gw);
  CHECK(reached() == new_gw->id());
  auto wait_down = [&](const caf::actor& gw) {
    caf::scoped_actor self{sys};
    self->monitor(gw);
    caf::anon_send_exit(gw, caf::exit_reason::kill);
    self->receive([](const caf::down_msg&) {});
  };
  wait_down(*old_gw);
  CHECK(reached() == new_gw->id());
  wait_down(*new_gw);
  // The exit functor runs in the gateway's cleanup, next to the down_msg.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (up->ready() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  CHECK_FALSE(up->ready());
  std::string why;
  CHECK(up->open(why) == -1);
  CHECK(why.find("not running") != std::string::npos);
}
