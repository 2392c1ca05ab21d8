#pragma once

// An event-driven HTTP/1.1 server (Boost.Beast on Asio) for the node's
// HTTP/JSON API. A few I/O threads run every connection asynchronously;
// handlers run on a separate pool (they may block on the engine) and may
// answer later, from any thread, so a request that waits for a result holds
// no thread at all.
//
//  accept --> [TLS only: handshake within request_timeout] --fails--> close
//               |
//               v
//             [idle: wait for a first byte, idle_timeout]
//               |
//               v
//             [read header + body within request_timeout] --error--> 400/413
//               |                                                    (close)
//               v
//             route --no route / wrong method--> 404 / 405
//               |
//               v
//             handler on the pool --> responder.send() (any thread, later)
//               |                  |
//               v                  `--> responder.open_stream(): [streaming:
//             [write within          header, then each piece as written,
//              write_timeout]        each within write_timeout; a read
//               |                    watches for the client leaving]
//               |                      |--stream.end()--> last chunk --.
//               |                      `--client left / too slow--> close
//               v                                                       |
//             --keep-alive--> idle  <-----------------------------------'
//             --close--> shutdown, drain, close
//
// A session is a template on its stream: plain TCP, or TLS (an ssl_stream
// over it) when the server has a certificate, so plain HTTP pays nothing for
// TLS. Timeouts go through the lowest layer (TCP) either way.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>

namespace cerebelum::api::http {

/// TLS of a server, as PEM text (not file names).
struct tls_pem {
  /// The certificate chain and its private key; an empty chain: plain HTTP.
  std::string cert_chain;
  std::string key;
  /// Client certificates must be signed by this CA (mutual TLS); empty:
  /// none are asked for.
  std::string client_ca;

  [[nodiscard]] bool enabled() const noexcept {
    return !cert_chain.empty();
  }
};

/// Limits and sizes of a server.
struct server_options {
  /// Threads running the connections (accept, read, write).
  int io_threads = 2;
  /// Threads running the handlers, which may block on the engine.
  int handler_threads = 32;
  /// Requests whose body has more bytes than this (0: none) run on a pool
  /// of their own, so that large requests waiting for admission
  /// (request_gate.hpp) never hold up the small ones.
  std::size_t large_body_bytes = 0;
  /// Threads running the large requests' handlers.
  int large_handler_threads = 8;
  /// The listen backlog: connections the kernel queues before accept.
  int backlog = 4096;
  /// Open connections beyond this get 503 and are closed.
  std::size_t max_connections = 10'000;
  /// Larger request bodies get 413 (and the connection is closed).
  std::size_t max_body_bytes = 1 << 20;
  /// A request's header and body must arrive within this, counted from its
  /// first byte (slow clients, "slowloris").
  std::chrono::milliseconds request_timeout{10'000};
  /// A keep-alive connection that sends nothing for this long is closed.
  std::chrono::milliseconds idle_timeout{60'000};
  /// A response must be taken by the client within this.
  std::chrono::milliseconds write_timeout{30'000};
  /// A streamed answer (see `stream`) whose client lets more than this wait
  /// unsent is ended: a slow reader cannot make the node hold its backlog.
  std::size_t max_stream_queue_bytes = 8 << 20;
  /// When enabled, the server speaks HTTPS only (TLS 1.2 or later): a
  /// connection's handshake must end within `request_timeout` of its
  /// accept, and failed handshakes are logged at most once a second.
  tls_pem tls;
};

/// A request as a handler sees it.
struct request {
  /// As sent ("GET", "POST", ...); HEAD requests reach GET routes.
  std::string method;
  /// The request target as sent (path and query).
  std::string target;
  /// The path, percent-decoded, without the query.
  std::string path;
  /// The groups captured by the route's pattern, in order.
  std::vector<std::string> captures;
  /// Query parameters of the target (never of the body), decoded.
  std::multimap<std::string, std::string> query;
  /// Header fields, names in lower case.
  std::multimap<std::string, std::string> headers;
  std::string body;
  /// The subject of the client's certificate (normal form,
  /// src/auth/cert_subject.hpp) when it showed one verified against
  /// `tls_pem::client_ca`, else "".
  std::string client_subject;
  /// Who sent it, as events record it: the authenticated principal's name
  /// (set by the server's guard), or "" when the node checks no tokens.
  std::string principal;
  /// The workflows that principal's token is scoped to (empty: every
  /// workflow; set by the server's guard).
  std::vector<std::string> workflows;

  /// The value of header `name` (any case), or "" when absent.
  [[nodiscard]] std::string header(std::string_view name) const;
};

/// A response a handler gives.
struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

/// `{"error": {"code": ..., "message": ...}}` with `status`.
response error_response(int status, const std::string& code,
                        const std::string& message);

class exchange;
class stream_channel;

/// The body of an answer sent in pieces as they come (server-sent events),
/// from any thread, until it ends. HTTP/1.1 clients get it chunked and keep
/// the connection afterwards; HTTP/1.0 clients get it until the close.
class stream {
 public:
  stream() = default;
  explicit stream(std::shared_ptr<stream_channel> ch) : ch_(std::move(ch)) {}

  /// Queues `data`, sent as it is after what was queued before. False once
  /// the stream has ended: the client left, a write timed out, more than
  /// `server_options::max_stream_queue_bytes` waited for the client, the
  /// server stops, or `end` was called. Nothing is sent after that.
  bool write(std::string data) const;

  /// Ends the answer once what is queued is sent.
  void end() const;

  /// Runs `f` once when the stream ends, for whatever reason (at once if it
  /// has ended already), on an I/O thread: keep it short.
  void on_end(std::function<void()> f) const;

  /// Whether writes are still taken.
  [[nodiscard]] bool open() const;

 private:
  std::shared_ptr<stream_channel> ch_;
};

/// What a streamed answer sends by itself.
struct stream_options {
  /// Written whenever nothing was sent for `keepalive_every` (0: never), so
  /// that proxies keep an idle stream and a client that left is noticed.
  std::string keepalive_text;
  std::chrono::milliseconds keepalive_every{0};
  /// Written last when the server stops the stream (says why it ends).
  std::string stop_text;
};

/// Answers one request, once, from any thread; later answers are ignored.
/// A request whose every responder is dropped unanswered gets 500.
class responder {
 public:
  explicit responder(std::shared_ptr<exchange> ex) : ex_(std::move(ex)) {}

  void send(response res) const;

  /// Answers with `head`'s status and headers, then `head.body`, then what
  /// the returned stream is given. When the request was answered already
  /// (the server stops), the stream returned has ended.
  [[nodiscard]] stream open_stream(response head,
                                   stream_options opts = {}) const;

 private:
  std::shared_ptr<exchange> ex_;
};

/// Handles one request; answers through the responder, now or later.
using handler = std::function<void(const request&, responder)>;

/// Told of every answer the server writes (metrics): the pattern of the
/// route that took the request ("" when none did: 404, 405, a malformed
/// request, a refused connection), the status, and the seconds from the
/// request's first byte to the answer. Runs on an I/O thread: keep it cheap.
using answer_observer
  = std::function<void(const std::string& route, int status, double seconds)>;

/// Checks a request before its route's handler runs (on the handler's
/// pool, so it may block briefly): `route` is the pattern the request
/// matched. Returns the answer when the request is refused; may set
/// `request::principal`.
using request_guard = std::function<std::optional<response>(
  const std::string& route, request& req)>;

class server {
 public:
  explicit server(server_options opts = {});
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Routes `method` on paths matching `pattern` (a regular expression over
  /// the whole decoded path; its groups become `request::captures`). A GET
  /// route also serves HEAD. Routes are matched in the order added; call
  /// before `listen`.
  void route(std::string method, const std::string& pattern, handler h);

  /// Runs `g` before every handler (see request_guard). Call before
  /// `listen`.
  void check_with(request_guard g);

  /// The answer to requests still pending when the server stops.
  void on_stop(response res);

  /// Tells `o` of every answer (see answer_observer). Call before `listen`.
  void observe(answer_observer o);

  /// Answers `req` without a connection, as a request read from one is
  /// answered: the method check, the routes in order, the guard, the
  /// handler and the answer observer are the same code. The handler runs
  /// on the calling thread, which then takes the answer; `serve` returns
  /// once it is whole (a streamed answer once its stream ended; a handler
  /// that answers later from another thread is waited for). `req` is as
  /// read from the wire: `method`, `target`, `headers` (any case), `body`
  /// and `client_subject`; the rest is set here as for a connection. Used
  /// where no socket is wanted (the fuzz harness tests/fuzz/http_api).
  [[nodiscard]] response serve(request req);

  /// Binds `host:port` (port 0: any free one), listens and starts the
  /// threads. An error names the address when it cannot bind (in use:
  /// SO_REUSEPORT is not set, so a second server on a port fails), or says
  /// what is wrong with the TLS certificate, key or CA.
  [[nodiscard]] caf::error listen(const std::string& host, int port);

  /// The bound port (after `listen`).
  [[nodiscard]] int port() const;

  /// The connections open now.
  [[nodiscard]] std::size_t connections() const;

  /// Stops accepting, closes idle connections and ends streamed answers,
  /// lets the handlers already given a request finish and answer, then
  /// answers requests still pending (waiting for something else) with the
  /// `on_stop` answer, closes every connection and joins the threads.
  /// Idempotent.
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

} // namespace cerebelum::api::http
