// The event-driven HTTP server under the API (src/bridges/http_server):
// slow and idle clients, many waiting requests, keep-alive, limits and
// shutdown. Clients are raw sockets so that a test controls every byte.

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "src/bridges/http_api.hpp"
#include "src/bridges/request_gate.hpp"
#include "tests/api/fake_engine.hpp"
#include "tests/support/scratch.hpp"

using cerebelum::test::fake_engine;
using json = nlohmann::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace http = cerebelum::api::http;

namespace {

/// The threads of this process.
int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

/// Raises the open-file limit to its hard limit (many sockets per test).
void raise_fd_limit() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

/// An answer read off a connection.
struct reply {
  int status = 0;
  std::string head;
  std::string body;

  [[nodiscard]] json parsed() const {
    return json::parse(body);
  }
};

/// A client connection made of a socket and what it read so far.
class conn {
 public:
  explicit conn(int port) : fd_(cerebelum::test::connect_loopback(port)) {
    REQUIRE(fd_ >= 0);
  }

  conn(conn&& other) noexcept : fd_(other.fd_), buf_(std::move(other.buf_)) {
    other.fd_ = -1;
  }

  conn& operator=(conn&&) = delete;

  ~conn() {
    if (fd_ >= 0) ::close(fd_);
  }

  [[nodiscard]] int fd() const {
    return fd_;
  }

  /// Sends all of `data`; false when the server closed.
  bool send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL)
           == static_cast<ssize_t>(data.size());
  }

  /// Reads what is available now (the socket is readable); false on close.
  bool read_some() {
    char tmp[8192];
    auto n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n <= 0) return n < 0 && errno == EAGAIN;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  /// A complete answer from what was read, if there is one.
  std::optional<reply> take() {
    auto end = buf_.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    reply r;
    r.head = buf_.substr(0, end + 4);
    std::size_t length = 0;
    if (auto cl = r.head.find("Content-Length: "); cl != std::string::npos)
      length = std::strtoul(r.head.c_str() + cl + 16, nullptr, 10);
    if (r.head.rfind("HTTP/1.1 100 ", 0) == 0) length = 0;
    if (buf_.size() < end + 4 + length) return std::nullopt;
    r.body = buf_.substr(end + 4, length);
    r.status = std::atoi(r.head.c_str() + 9);
    buf_.erase(0, end + 4 + length);
    return r;
  }

  /// Waits up to `within` for the next answer; nothing when the connection
  /// closed or the time passed.
  std::optional<reply> next(std::chrono::milliseconds within = 5000ms) {
    auto deadline = steady::now() + within;
    for (;;) {
      if (auto r = take()) return r;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - steady::now());
      if (left <= 0ms) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      if (!read_some()) return take();
    }
  }

  /// Waits up to `within` until what was read holds `needle`; false when
  /// the connection closed or the time passed first.
  bool read_until(const std::string& needle,
                  std::chrono::milliseconds within = 5000ms) {
    auto deadline = steady::now() + within;
    while (buf_.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - steady::now());
      if (left <= 0ms) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      if (!read_some()) return buf_.find(needle) != std::string::npos;
    }
    return true;
  }

  /// What was read and not taken yet.
  [[nodiscard]] const std::string& raw() const {
    return buf_;
  }

  /// Forgets what was read.
  void clear() {
    buf_.clear();
  }

  /// Waits up to `within` for the server to close the connection; returns
  /// how long that took, or nothing.
  std::optional<std::chrono::milliseconds>
  closed_within(std::chrono::milliseconds within) {
    auto start = steady::now();
    auto deadline = start + within;
    while (steady::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char tmp[4096];
      auto n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN))
        return std::chrono::duration_cast<std::chrono::milliseconds>(
          steady::now() - start);
    }
    return std::nullopt;
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct fixture {
  std::shared_ptr<fake_engine> engine = std::make_shared<fake_engine>();
  std::unique_ptr<http::server> server;
  int port = 0;

  explicit fixture(http::server_options opts = {},
                   std::size_t max_body_bytes = 4096) {
    raise_fd_limit();
    cerebelum::api::http_options api;
    api.max_body_bytes = max_body_bytes;
    api.server = opts;
    server = cerebelum::api::make_http_api(engine, api);
    auto err = server->listen("127.0.0.1", 0);
    REQUIRE_FALSE(err);
    port = server->port();
  }

  ~fixture() {
    server->stop();
  }
};

} // namespace

TEST_CASE("300 clients that sent half a request do not keep a normal client "
          "from its answers") {
  fixture f;
  std::vector<conn> slow;
  for (int i = 0; i < 300; ++i) {
    slow.emplace_back(f.port);
    REQUIRE(slow.back().send("POST /v1/workflows/order/executions HTTP/1.1\r\n"
                             "Host: x\r\nContent-Len"));
  }
  conn normal{f.port};
  auto start = steady::now();
  for (int i = 0; i < 20; ++i) {
    REQUIRE(normal.send(get("/v1/workflows")));
    auto r = normal.next(2000ms);
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  auto took = steady::now() - start;
  WARN("20 requests beside 300 stalled connections took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
       << " ms");
  CHECK(took < 2s);
  CHECK(f.server->connections() >= 301);
}

TEST_CASE("500 concurrent waiting starts all complete on a bounded number of "
          "threads") {
  auto before = thread_count();
  fixture f;
  constexpr int n = 500;
  std::vector<conn> clients;
  clients.reserve(n);
  auto start = steady::now();
  for (int i = 0; i < n; ++i) {
    clients.emplace_back(f.port);
    REQUIRE(clients.back().send(post("/v1/workflows/nap/executions?id=n-"
                                       + std::to_string(i) + "&wait=true",
                                     "{}")));
  }
  std::vector<std::optional<reply>> replies(n);
  int answered = 0;
  int peak = thread_count();
  auto deadline = start + 20s;
  while (answered < n && steady::now() < deadline) {
    std::vector<pollfd> fds;
    std::vector<int> which;
    for (int i = 0; i < n; ++i)
      if (!replies[i]) {
        fds.push_back({clients[i].fd(), POLLIN, 0});
        which.push_back(i);
      }
    if (::poll(fds.data(), fds.size(), 100) > 0)
      for (std::size_t k = 0; k < fds.size(); ++k) {
        if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        auto& c = clients[which[k]];
        bool open = c.read_some();
        if (auto r = c.take()) {
          replies[which[k]] = std::move(r);
          ++answered;
        } else if (!open) {
          replies[which[k]] = reply{};
          ++answered;
        }
      }
    peak = std::max(peak, thread_count());
  }
  auto took = steady::now() - start;
  WARN(n << " waiting starts took "
         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
         << " ms; threads before the server " << before << ", peak " << peak);
  REQUIRE(answered == n);
  int completed = 0;
  for (auto& r : replies)
    if (r->status == 201 && r->parsed()["execution"]["status"] == "completed")
      ++completed;
  CHECK(completed == n);
  CHECK(took < 10s);
  // 2 I/O threads, 32 handler threads, the fake engine's poller: no thread
  // per waiting request (the httplib server had 128 and blocked them).
  CHECK(peak - before < 64);
}

TEST_CASE("a request whose header does not arrive within the request timeout "
          "is cut") {
  http::server_options opts;
  opts.request_timeout = 300ms;
  fixture f{opts};
  SECTION("a header that stops half-way") {
    conn c{f.port};
    REQUIRE(c.send("GET /v1/workflows HTTP/1.1\r\nHo"));
    auto closed = c.closed_within(3000ms);
    REQUIRE(closed);
    CHECK(*closed >= 250ms);
  }
  SECTION("a header that trickles in a byte every 50 ms") {
    conn c{f.port};
    REQUIRE(c.send("GET /v1/workflows HTTP/1.1\r\nX-Slow: "));
    auto start = steady::now();
    bool cut = false;
    while (steady::now() - start < 3s) {
      if (!c.send("a")) {
        cut = true;
        break;
      }
      if (c.closed_within(50ms)) {
        cut = true;
        break;
      }
    }
    CHECK(cut);
    CHECK(steady::now() - start < 2s);
  }
  SECTION("a fast request on the same server is answered") {
    conn c{f.port};
    REQUIRE(c.send(get("/v1/workflows")));
    auto r = c.next();
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
  http::server_options opts;
  opts.idle_timeout = 300ms;
  fixture f{opts};
  conn c{f.port};
  REQUIRE(c.send(get("/v1/workflows")));
  REQUIRE(c.next());
  auto closed = c.closed_within(3000ms);
  REQUIRE(closed);
  CHECK(*closed >= 250ms);
  // The server counts it closed once its read has ended (just after).
  auto deadline = steady::now() + 2s;
  while (f.server->connections() > 0 && steady::now() < deadline)
    std::this_thread::sleep_for(5ms);
  CHECK(f.server->connections() == 0);
}

TEST_CASE("one keep-alive connection serves 1,000 requests") {
  fixture f;
  conn c{f.port};
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(c.send(get("/v1/workflows")));
    auto r = c.next();
    REQUIRE(r);
    REQUIRE(r->status == 200);
    REQUIRE(r->head.find("Connection: close") == std::string::npos);
  }
  // Pipelined requests are answered in order.
  std::string three;
  for (auto id : {"p-1", "p-2", "p-3"})
    three += post(std::string{"/v1/workflows/order/executions?id="} + id, "{}");
  REQUIRE(c.send(three));
  for (auto id : {"p-1", "p-2", "p-3"}) {
    auto r = c.next();
    REQUIRE(r);
    CHECK(r->parsed()["execution"]["execution_id"] == id);
  }
}

TEST_CASE("connections over the limit get 503 and are closed") {
  http::server_options opts;
  opts.max_connections = 3;
  fixture f{opts};
  std::vector<conn> open;
  for (int i = 0; i < 3; ++i) {
    open.emplace_back(f.port);
    REQUIRE(open.back().send(get("/v1/workflows")));
    REQUIRE(open.back().next());
  }
  conn extra{f.port};
  auto r = extra.next();
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->parsed()["error"]["code"] == "unavailable");
  CHECK(extra.closed_within(3000ms));
  // The open ones still work.
  REQUIRE(open[0].send(get("/v1/workflows")));
  auto again = open[0].next();
  REQUIRE(again);
  CHECK(again->status == 200);
}

TEST_CASE("a waiting start still pending when the server stops is answered "
          "503") {
  fixture f;
  f.engine->nap_time = 60s;
  conn c{f.port};
  REQUIRE(c.send(post("/v1/workflows/nap/executions?id=s&wait=true", "{}")));
  // The wait is pending once the execution exists.
  auto deadline = steady::now() + 5s;
  while (!f.engine->describe("s") && steady::now() < deadline)
    std::this_thread::sleep_for(5ms);
  REQUIRE(f.engine->describe("s"));
  auto start = steady::now();
  f.server->stop();
  CHECK(steady::now() - start < 3s);
  auto r = c.next();
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->parsed()["error"]["code"] == "unavailable");
  CHECK(r->head.find("Retry-After: 1") != std::string::npos);
}

TEST_CASE("HEAD answers a GET route's headers without its body") {
  fixture f;
  conn c{f.port};
  REQUIRE(c.send("HEAD /v1/workflows HTTP/1.1\r\nHost: x\r\n\r\n"));
  // The answer has a Content-Length but no body: read the head alone.
  auto deadline = steady::now() + 5s;
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos
         && steady::now() < deadline) {
    char tmp[1024];
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    auto n = ::recv(c.fd(), tmp, sizeof tmp, 0);
    if (n <= 0) break;
    head.append(tmp, static_cast<std::size_t>(n));
  }
  CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(head.find("Content-Length: ") != std::string::npos);
  CHECK(head.substr(head.find("\r\n\r\n") + 4).empty());
  // The connection goes on with the next request.
  REQUIRE(c.send(get("/v1/workflows")));
  auto r = c.next();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK_FALSE(r->body.empty());
}

TEST_CASE("a client that expects 100-continue gets it, then its answer") {
  fixture f;
  conn c{f.port};
  REQUIRE(c.send("POST /v1/workflows/order/executions?id=e HTTP/1.1\r\n"
                 "Host: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
                 "\r\n"));
  auto cont = c.next();
  REQUIRE(cont);
  CHECK(cont->status == 100);
  REQUIRE(c.send("{}"));
  auto r = c.next();
  REQUIRE(r);
  CHECK(r->status == 201);
}

TEST_CASE("a second server cannot bind a port in use") {
  fixture f;
  http::server other;
  auto err = other.listen("127.0.0.1", f.port);
  CHECK(err);
}

TEST_CASE("large requests waiting for an admission slot do not hold up small "
          "ones") {
  fixture f{{}, 256 * 1024};
  // Every slot of the node's gate taken: large requests wait for one.
  std::vector<cerebelum::api::request_gate::ticket> held;
  for (int i = 0; i < cerebelum::api::large_request_slots; ++i) {
    auto t = cerebelum::api::request_gate::shared().admit(
      cerebelum::api::large_request_bytes + 1, 0ms);
    REQUIRE(t);
    held.push_back(std::move(*t));
  }
  std::string big = R"({"pad":")" + std::string(100 * 1024, 'x') + R"("})";
  std::vector<conn> large;
  for (int i = 0; i < 40; ++i) {
    large.emplace_back(f.port);
    REQUIRE(large.back().send(
      post("/v1/workflows/order/executions?id=big-" + std::to_string(i), big)));
  }
  conn small{f.port};
  auto start = steady::now();
  for (int i = 0; i < 10; ++i) {
    REQUIRE(small.send(post(
      "/v1/workflows/order/executions?id=small-" + std::to_string(i), "{}")));
    auto r = small.next(3000ms);
    REQUIRE(r);
    CHECK(r->status == 201);
  }
  CHECK(steady::now() - start < 2s);
  held.clear();
  for (auto& c : large) {
    auto r = c.next(20'000ms);
    REQUIRE(r);
    CHECK(r->status == 201);
  }
}

namespace {

/// A server whose route GET /s opens a streamed answer and hands its stream
/// to the test (`next_stream`); GET /plain answers "ok".
struct stream_fixture {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<http::stream> streams;
  std::atomic<int> ended{0};
  http::stream_options stream_opts;
  http::server server;
  int port = 0;

  explicit stream_fixture(http::server_options opts = {},
                          http::stream_options sopts = {})
    : stream_opts(std::move(sopts)), server(opts) {
    server.route("GET", "/s", [this](const http::request&, http::responder r) {
      http::response head;
      head.content_type = "text/event-stream";
      head.body = "first\n";
      auto out = r.open_stream(std::move(head), stream_opts);
      out.on_end([this] {
        ++ended;
      });
      std::lock_guard<std::mutex> guard{mtx};
      streams.push_back(out);
      cv.notify_all();
    });
    server.route("GET", "/plain", [](const http::request&, http::responder r) {
      http::response res;
      res.content_type = "text/plain";
      res.body = "ok";
      r.send(std::move(res));
    });
    REQUIRE_FALSE(server.listen("127.0.0.1", 0));
    port = server.port();
  }

  ~stream_fixture() {
    server.stop();
  }

  /// The stream of the n-th request to /s (0-based), once it is open.
  http::stream stream(std::size_t n = 0) {
    std::unique_lock<std::mutex> guard{mtx};
    REQUIRE(cv.wait_for(guard, 5s, [&] {
      return streams.size() > n;
    }));
    return streams[n];
  }

  bool wait_ended(int n, std::chrono::milliseconds within = 5000ms) {
    auto deadline = steady::now() + within;
    while (ended.load() < n && steady::now() < deadline)
      std::this_thread::sleep_for(5ms);
    return ended.load() >= n;
  }
};

} // namespace

TEST_CASE("a streamed answer sends each piece as it is written, chunked, "
          "then the connection takes the next request") {
  stream_fixture f;
  conn c{f.port};
  REQUIRE(c.send(get("/s")));
  auto out = f.stream();
  REQUIRE(c.read_until("6\r\nfirst\n\r\n"));
  CHECK(c.raw().rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(c.raw().find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(c.raw().find("Content-Type: text/event-stream") != std::string::npos);
  for (int i = 0; i < 3; ++i) {
    auto piece = "piece " + std::to_string(i);
    REQUIRE(out.write(piece));
    // Each piece arrives while the answer is still open.
    REQUIRE(c.read_until("7\r\n" + piece + "\r\n"));
  }
  CHECK(out.open());
  out.end();
  REQUIRE(c.read_until("\r\n0\r\n\r\n"));
  CHECK(f.wait_ended(1));
  CHECK_FALSE(out.write("late"));
  c.clear();
  REQUIRE(c.send(get("/plain")));
  auto r = c.next();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "ok");
}

TEST_CASE("a client that leaves ends its stream at once") {
  stream_fixture f;
  {
    conn c{f.port};
    REQUIRE(c.send(get("/s")));
    REQUIRE(c.read_until("first"));
  }
  auto out = f.stream();
  // Noticed by the read the server keeps open, not by a later write.
  CHECK(f.wait_ended(1, 2000ms));
  CHECK_FALSE(out.write("anyone?"));
  auto deadline = steady::now() + 2s;
  while (f.server.connections() > 0 && steady::now() < deadline)
    std::this_thread::sleep_for(5ms);
  CHECK(f.server.connections() == 0);
}

TEST_CASE("a client that does not read is cut off once too much waits for it") {
  http::server_options opts;
  opts.max_stream_queue_bytes = 256 * 1024;
  opts.write_timeout = 60s;
  stream_fixture f{opts};
  conn c{f.port};
  REQUIRE(c.send(get("/s")));
  auto out = f.stream();
  std::string piece(16 * 1024, 'x');
  int written = 0;
  while (written < 10'000 && out.write(piece))
    ++written;
  // The socket buffers hold a few MiB at most; the rest waited and was
  // refused once over the bound.
  CHECK(written < 10'000);
  CHECK_FALSE(out.open());
  CHECK(f.wait_ended(1));
  CHECK(c.closed_within(5000ms));
}

TEST_CASE("an idle stream sends its keep-alive text") {
  stream_fixture f{
    {},
    {.keepalive_text = ": ka\n\n", .keepalive_every = 100ms, .stop_text = {}}};
  conn c{f.port};
  REQUIRE(c.send(get("/s")));
  auto out = f.stream();
  REQUIRE(c.read_until(": ka", 3000ms));
  c.clear();
  REQUIRE(c.read_until(": ka", 3000ms));
  CHECK(out.open());
}

TEST_CASE("a server that stops ends its streams with their last chunk") {
  stream_fixture f{
    {},
    {.keepalive_text = {}, .keepalive_every = {}, .stop_text = "stopping\n"}};
  conn c{f.port};
  REQUIRE(c.send(get("/s")));
  auto out = f.stream();
  REQUIRE(c.read_until("first"));
  auto start = steady::now();
  f.server.stop();
  CHECK(steady::now() - start < 3s);
  CHECK(c.read_until("9\r\nstopping\n\r\n0\r\n\r\n"));
  CHECK(f.wait_ended(1));
  CHECK_FALSE(out.open());
}

TEST_CASE("an HTTP/1.0 client gets a streamed answer until the close") {
  stream_fixture f;
  conn c{f.port};
  REQUIRE(c.send("GET /s HTTP/1.0\r\n\r\n"));
  auto out = f.stream();
  REQUIRE(out.write("more"));
  REQUIRE(c.read_until("first\nmore"));
  CHECK(c.raw().find("chunked") == std::string::npos);
  out.end();
  CHECK(c.closed_within(5000ms));
  CHECK(f.wait_ended(1));
}
