// The CAF guard in-process, relaying to plain TCP listeners that stand in
// for the worker gateway, and the gateway spec's hand-over of connections
// across restarts.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "src/bridges/caf/guard.hpp"
#include "src/bridges/caf/worker_gateway.hpp"
#include "tests/cafworkers/basp_peer.hpp"
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
    return {fd, out};
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
int connect_loopback(std::uint16_t port, std::string& why) {
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
      return connect_loopback(port, why);
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

TEST_CASE("a restarted worker gateway takes the guard's next connections "
          "and the old one's exit does not remove it") {
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
