#include "src/bridges/http_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <type_traits>

#include "actors/errc.hpp"
#include "src/auth/cert_subject.hpp"
#include "src/bridges/http_target.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::api::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

/// How long a closing connection is drained of what the client still sends,
/// so that its last answer is not lost to a reset.
constexpr std::chrono::milliseconds linger_time{2'000};

/// How long `stop` waits for connections to take their last answer.
constexpr std::chrono::milliseconds stop_grace{2'000};

/// What the first read of a request (or the read that watches a streamed
/// answer's client) takes at most; the parser reads the rest.
constexpr std::size_t first_read_bytes = 512;

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool known_method(std::string_view m) {
  for (const char* k :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
    if (m == k) return true;
  return false;
}

class requester;
class session_base;

struct route_entry {
  std::string method;
  std::regex pattern;
  handler run;
  /// The pattern as given (for the answer observer).
  std::string text;
};

} // namespace

/// The state every connection shares. Members a session's destructor
/// touches (the registry) are declared before the io_context, whose
/// destructor may destroy the last sessions.
struct server::impl {
  explicit impl(server_options o) : opts(o) {
    stop_answer = error_response(503, "unavailable", "the server is stopping");
  }

  server_options opts;
  std::vector<route_entry> routes;
  response stop_answer;
  answer_observer observer;
  request_guard guard;
  std::atomic<bool> stopping{false};
  bool started = false;
  // For the exchanges, which keep the io_context alive.
  std::weak_ptr<impl> self;
  int port = 0;

  // The registry of open connections (not those refused over the limit).
  mutable std::mutex mtx;
  std::condition_variable cv;
  std::map<std::uint64_t, std::weak_ptr<session_base>> sessions;
  std::uint64_t next_id = 0;

  // TLS: the context of every connection (set when listening with a
  // certificate), and failed handshakes not logged yet.
  std::optional<asio::ssl::context> tls;
  std::atomic<std::uint64_t> handshakes_failed{0};
  std::atomic<std::int64_t> handshake_logged_ms{
    std::numeric_limits<std::int64_t>::min() / 2};

  std::unique_ptr<asio::thread_pool> pool;
  std::unique_ptr<asio::thread_pool> large_pool;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
    work;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::vector<std::thread> threads;

  void do_accept();
  void on_accept(error_code ec, tcp::socket sock);
  void dispatch(std::shared_ptr<requester> s, request req, bool head);
  [[nodiscard]] caf::error make_tls_context();
  void handshake_failed(const error_code& ec, const std::string& peer);
};

/// One request being handled: answered once, by the handler or by the
/// server's stop, whichever comes first.
class exchange {
 public:
  exchange(std::shared_ptr<requester> s, std::shared_ptr<server::impl> srv)
    : session_(std::move(s)), server_(std::move(srv)) {
    // nop
  }

  ~exchange() {
    if (claim())
      deliver(error_response(500, "internal",
                             "the request's handler gave no answer"));
  }

  /// True for the first caller only.
  bool claim() {
    return !done_.exchange(true);
  }

  /// Hands `res` to the connection's strand.
  void deliver(response res);

  /// Hands `head` to the connection's strand as the start of a streamed
  /// answer (once claimed).
  stream open(response head, stream_options opts);

 private:
  std::shared_ptr<requester> session_;
  // Keeps the io_context alive for `deliver`, whatever thread answers when.
  std::shared_ptr<server::impl> server_;
  std::atomic<bool> done_{false};
};

/// What a `stream` and its connection share. The connection owns the
/// queue; the channel counts what waits in it and runs `on_end` once.
class stream_channel {
 public:
  stream_channel(std::shared_ptr<requester> s, std::size_t max_queued)
    : session_(std::move(s)), max_queued_(max_queued) {
    // nop
  }

  /// A stream that has ended before it began.
  static std::shared_ptr<stream_channel> ended_one() {
    auto ch = std::make_shared<stream_channel>(nullptr, 0);
    ch->ended();
    return ch;
  }

  /// The stream is over: writes are refused and `on_end` runs (once).
  void ended() {
    open_ = false;
    std::function<void()> f;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (ended_) return;
      ended_ = true;
      f = std::move(on_end_);
    }
    if (f) f();
  }

  void on_end(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!ended_) {
        on_end_ = std::move(f);
        return;
      }
    }
    f();
  }

  bool write(std::string data);
  void end();

  /// Bytes written by the connection: they no longer wait.
  void sent(std::size_t n) {
    queued_ -= n;
  }

  [[nodiscard]] bool open() const {
    return open_.load();
  }

 private:
  std::shared_ptr<requester> session_;
  std::size_t max_queued_;
  std::atomic<bool> open_{true};
  std::atomic<std::size_t> queued_{0};
  std::mutex mtx_;
  std::function<void()> on_end_;
  bool ended_ = false;
};

namespace {

/// What the server, an exchange and a stream channel ask of whoever takes
/// a request's answer: a connection (session_base), or the caller of
/// `server::serve`. Each call comes once a request at most (never once a
/// read), so that a virtual call costs nothing worth counting.
class requester : public std::enable_shared_from_this<requester> {
 public:
  requester(asio::any_io_executor strand, server::impl* srv)
    : strand_(std::move(strand)), srv_(srv) {
    // nop
  }

  requester(const requester&) = delete;
  requester& operator=(const requester&) = delete;

  virtual ~requester() = default;

  /// Where the answer is taken: the calls below run there (or are posted).
  [[nodiscard]] const asio::any_io_executor& strand() const {
    return strand_;
  }

  /// Starts a streamed answer: `head`'s status and headers, then its body,
  /// then what the channel is given, written in order, one at a time.
  virtual void begin_stream(std::shared_ptr<stream_channel> ch, response head,
                            stream_options opts)
    = 0;

  /// Queues a piece of a streamed answer (`counted`: the channel counts
  /// its bytes).
  virtual void stream_push(std::string data, bool counted) = 0;

  /// Ends the streamed answer once its queue is sent.
  virtual void stream_finish() = 0;

  /// Ends the streamed answer now (a connection closes).
  virtual void stream_abort() = 0;

  /// Writes `res` (a connection then reads the next request or closes).
  virtual void write(response res) = 0;

 protected:
  /// Tells the observer of the answer to the request being handled.
  void answered(int status) {
    if (srv_->observer)
      srv_->observer(
        route_, status,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began_)
          .count());
    route_.clear();
  }

  friend struct cerebelum::api::http::server::impl;

  asio::any_io_executor strand_;
  server::impl* srv_;
  std::weak_ptr<exchange> pending_;
  /// The pattern of the route that took the request being answered (for
  /// the answer observer).
  std::string route_;
  bool keep_alive_ = true;
  /// The first byte's time of the request being answered (for the answer
  /// observer).
  std::chrono::steady_clock::time_point began_
    = std::chrono::steady_clock::now();
  /// Where the request's handler runs; none: on the server's handler pools.
  std::optional<asio::any_io_executor> handlers_;
};

/// What the server asks of a connection, whatever its stream.
class session_base : public requester {
 public:
  session_base(asio::any_io_executor strand, server::impl* srv,
               std::uint64_t id)
    : requester(std::move(strand), srv), id_(id) {
    // nop
  }

  ~session_base() override {
    unregister();
  }

  /// Handshakes (TLS), then waits for the first request.
  virtual void start() = 0;

  /// Answers `res` at once and closes (the server is full).
  virtual void refuse(response res) = 0;

  /// The server stops. First (`answer_pending` false) an idle connection
  /// is closed; then, once every handler has returned, a request still
  /// pending (one that waits for the engine) gets the stop answer.
  virtual void server_stopping(bool answer_pending) = 0;

 protected:
  /// Leaves the registry of open connections (once): a closed connection
  /// no longer counts, even while an answer to it is still under way.
  void unregister() {
    if (id_ == 0) return;
    std::lock_guard<std::mutex> guard{srv_->mtx};
    srv_->sessions.erase(id_);
    id_ = 0;
    srv_->cv.notify_all();
  }

  std::uint64_t id_;
};

/// The caller of `server::serve`: its own io_context runs the handler and
/// takes the answer, on the caller's thread, until the answer is whole.
class local_requester final : public requester {
 public:
  local_requester(asio::io_context& ctx, server::impl* srv, bool head)
    : requester(ctx.get_executor(), srv),
      work_(ctx.get_executor()),
      head_(head) {
    handlers_ = ctx.get_executor();
  }

  void begin_stream(std::shared_ptr<stream_channel> ch, response head,
                    stream_options) override {
    if (done_) return ch->ended();
    answered(head.status);
    pending_.reset();
    streaming_ = true;
    channel_ = std::move(ch);
    answer_ = std::move(head);
    if (head_) answer_.body.clear();
  }

  void stream_push(std::string data, bool counted) override {
    if (counted && channel_) channel_->sent(data.size());
    if (!streaming_ || done_ || head_) return;
    answer_.body += data;
  }

  void stream_finish() override {
    if (streaming_) finish();
  }

  void stream_abort() override {
    if (streaming_) finish();
  }

  void write(response res) override {
    if (done_) return;
    answered(res.status);
    pending_.reset();
    answer_ = std::move(res);
    // A HEAD answer has the GET answer's headers and no body.
    if (head_) answer_.body.clear();
    finish();
  }

  /// The answer, once the io_context ran out of work.
  response take() {
    return std::move(answer_);
  }

 private:
  void finish() {
    done_ = true;
    streaming_ = false;
    if (auto ch = std::move(channel_)) ch->ended();
    work_.reset();
  }

  asio::executor_work_guard<asio::io_context::executor_type> work_;
  bool head_;
  bool done_ = false;
  bool streaming_ = false;
  std::shared_ptr<stream_channel> channel_;
  response answer_;
};

/// One connection over `Stream`: plain TCP or TLS over it. Every member is
/// used on the connection's strand only.
template <class Stream>
class session final : public session_base {
 public:
  static constexpr bool secure = std::is_same_v<Stream, tls_stream>;
  static_assert(secure || std::is_same_v<Stream, plain_stream>);

  /// `more`: what the stream takes after the socket (a TLS context).
  template <class... More>
  session(tcp::socket sock, server::impl* srv, std::uint64_t id, More&... more)
    : session_base(sock.get_executor(), srv, id),
      stream_(std::move(sock), more...) {
    // nop
  }

  void start() override {
    asio::dispatch(strand_, [self = me()] {
      self->handshake([self] {
        self->read_first();
      });
    });
  }

  void refuse(response res) override {
    asio::dispatch(strand_, [self = me(), res = std::move(res)]() mutable {
      self->handshake([self, res = std::move(res)]() mutable {
        self->keep_alive_ = false;
        self->write(std::move(res));
      });
    });
  }

  void server_stopping(bool answer_pending) override {
    asio::dispatch(strand_, [self = me(), answer_pending] {
      if (answer_pending) {
        if (auto ex = self->pending_.lock(); ex && ex->claim()) {
          self->keep_alive_ = false;
          self->write(self->srv_->stop_answer);
          return;
        }
      }
      if (self->phase_ == phase::idle) self->close();
      if (self->phase_ == phase::streaming) {
        self->keep_alive_ = false;
        if (!self->stop_text_.empty())
          self->stream_push(self->stop_text_, false);
        self->stream_finish();
      }
    });
  }

  void begin_stream(std::shared_ptr<stream_channel> ch, response head,
                    stream_options opts) override {
    if (phase_ == phase::closed || phase_ == phase::closing) return ch->ended();
    answered(head.status);
    pending_.reset();
    phase_ = phase::streaming;
    channel_ = std::move(ch);
    out_.clear();
    out_ending_ = false;
    finished_ = false;
    auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
    fill_head(*res, head);
    // HTTP/1.0 knows no chunks: the body ends with the connection.
    chunked_ = version_ >= 11;
    if (chunked_) res->chunked(true);
    keep_alive_ = chunked_ && keep_alive_ && !srv_->stopping.load();
    res->keep_alive(keep_alive_);
    auto sr
      = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*res);
    stop_text_ = std::move(opts.stop_text);
    if (head_) {
      out_ending_ = true;
    } else {
      if (!head.body.empty()) out_.emplace_back(std::move(head.body), false);
      // Reads while the answer goes out notice a client that leaves. Its
      // timer is set first: the writes' timeout must not apply to it.
      lowest().expires_never();
      watch_client();
      if (opts.keepalive_every.count() > 0) {
        keepalive_text_ = std::move(opts.keepalive_text);
        keepalive_every_ = opts.keepalive_every;
        keepalive_.emplace(strand_);
        arm_keepalive();
      }
    }
    out_writing_ = true;
    lowest().expires_after(srv_->opts.write_timeout);
    bhttp::async_write_header(
      stream_, *sr, [self = me(), res, sr](error_code ec, std::size_t) {
        self->on_stream_written(ec, 0);
      });
  }

  void stream_push(std::string data, bool counted) override {
    if (phase_ != phase::streaming || out_ending_) {
      if (counted && channel_) channel_->sent(data.size());
      return;
    }
    out_.emplace_back(std::move(data), counted);
    pump();
  }

  void stream_finish() override {
    if (phase_ != phase::streaming) return;
    out_ending_ = true;
    pump();
  }

  void stream_abort() override {
    stop_stream();
    close();
  }

  void write(response r) override {
    if (phase_ == phase::closed || phase_ == phase::closing) return;
    answered(r.status);
    phase_ = phase::writing;
    pending_.reset();
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    fill_head(*res, r);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive_ && !srv_->stopping.load());
    res->prepare_payload();
    // A HEAD answer has the GET answer's headers (Content-Length too) and
    // no body.
    if (head_) res->body().clear();
    lowest().expires_after(srv_->opts.write_timeout);
    bhttp::async_write(stream_, *res,
                       [self = me(), res](error_code ec, std::size_t) {
                         self->on_write(ec, res->keep_alive());
                       });
  }

 private:
  /// The status line and header fields of `r` on `msg`.
  template <class Message>
  void fill_head(Message& msg, const response& r) const {
    msg.version(version_);
    msg.result(static_cast<unsigned>(r.status));
    if (!r.content_type.empty())
      msg.set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers)
      msg.set(name, value);
  }

  enum class phase {
    idle,
    reading,
    handling,
    writing,
    streaming,
    closing,
    closed
  };

  /// Writes the next piece of the streamed answer, or its end.
  void pump() {
    if (phase_ != phase::streaming || out_writing_) return;
    if (!out_.empty()) {
      auto data = std::make_shared<std::string>(std::move(out_.front().first));
      auto counted = out_.front().second ? data->size() : 0;
      out_.pop_front();
      out_writing_ = true;
      lowest().expires_after(srv_->opts.write_timeout);
      auto done = [self = me(), data, counted](error_code ec, std::size_t) {
        self->on_stream_written(ec, counted);
      };
      if (chunked_)
        asio::async_write(stream_, bhttp::make_chunk(asio::buffer(*data)),
                          std::move(done));
      else
        asio::async_write(stream_, asio::buffer(*data), std::move(done));
      return;
    }
    if (!out_ending_) return;
    // Without chunks (HTTP/1.0) the close ends the body: keep_alive_ is
    // false, so stream_done lingers.
    if (!chunked_ || head_) return stream_done();
    out_writing_ = true;
    lowest().expires_after(srv_->opts.write_timeout);
    asio::async_write(stream_, bhttp::make_chunk_last(),
                      [self = me()](error_code ec, std::size_t) {
                        self->out_writing_ = false;
                        if (ec) return self->stream_abort();
                        self->stream_done();
                      });
  }

  void on_stream_written(error_code ec, std::size_t counted) {
    out_writing_ = false;
    if (counted > 0 && channel_) channel_->sent(counted);
    if (ec) return stream_abort();
    last_sent_ = std::chrono::steady_clock::now();
    pump();
  }

  /// Reads while a streamed answer goes out: an end of stream or an error
  /// means the client left. Bytes that come are kept for the next request
  /// (and the watch stops: write errors tell the rest).
  void watch_client() {
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(first_read_bytes),
                            [self = me()](error_code ec, std::size_t n) {
                              self->watching_ = false;
                              if (!ec) {
                                self->buffer_.commit(n);
                                if (self->finished_) self->after_stream();
                                return;
                              }
                              if (self->finished_
                                  && ec == asio::error::operation_aborted)
                                return self->after_stream();
                              self->stream_abort();
                            });
  }

  void arm_keepalive() {
    keepalive_->expires_after(keepalive_every_);
    keepalive_->async_wait([self = me()](error_code ec) {
      if (ec || self->phase_ != phase::streaming || self->out_ending_) return;
      if (!self->out_writing_ && self->out_.empty()
          && std::chrono::steady_clock::now() - self->last_sent_
               >= self->keepalive_every_)
        self->stream_push(self->keepalive_text_, false);
      self->arm_keepalive();
    });
  }

  /// The stream is over for its writer (whatever the connection does next).
  void stop_stream() {
    if (keepalive_) keepalive_->cancel();
    out_.clear();
    if (auto ch = std::move(channel_)) ch->ended();
  }

  /// The last chunk is sent: once the watching read is back, the
  /// connection takes its next request.
  void stream_done() {
    stop_stream();
    finished_ = true;
    if (watching_) {
      error_code ignored;
      lowest().socket().cancel(ignored);
      return;
    }
    after_stream();
  }

  void after_stream() {
    finished_ = false;
    if (phase_ != phase::streaming) return;
    if (!keep_alive_ || srv_->stopping.load()) return linger();
    read_first();
  }

  beast::tcp_stream& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  std::shared_ptr<session> me() {
    return std::static_pointer_cast<session>(shared_from_this());
  }

  /// Runs `next` once the TLS handshake succeeded (at once without TLS); a
  /// handshake that fails or does not end within the request timeout
  /// closes the connection.
  template <class Next>
  void handshake(Next next) {
    if constexpr (secure) {
      lowest().expires_after(srv_->opts.request_timeout);
      // Taken now: a socket closed by the timeout has no address left.
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = me(), who = peer(),
                               next = std::move(next)](error_code ec) mutable {
                                if (!ec) {
                                  self->client_subject_ = self->peer_subject();
                                  return next();
                                }
                                if (self->phase_ != phase::closed)
                                  self->srv_->handshake_failed(ec, who);
                                self->close();
                              });
    } else {
      next();
    }
  }

  /// The subject of the client's certificate: verified against the client
  /// CA, which the context then requires (make_tls_context); "" without.
  std::string peer_subject() {
    if constexpr (secure) {
      auto* ssl = stream_.native_handle();
      if (SSL_get_verify_result(ssl) != X509_V_OK) return {};
      return auth::subject_of(SSL_get0_peer_certificate(ssl));
    } else {
      return {};
    }
  }

  /// The client's address, for logs.
  std::string peer() {
    error_code ec;
    auto ep = lowest().socket().remote_endpoint(ec);
    if (ec) return "an unknown address";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  /// Waits up to the idle timeout for the first bytes of a request.
  void read_first() {
    if (srv_->stopping.load()) return close();
    phase_ = phase::idle;
    head_ = false;
    keep_alive_ = true;
    version_ = 11;
    parser_.emplace();
    parser_->body_limit(srv_->opts.max_body_bytes);
    parser_->header_limit(max_header_bytes);
    if (buffer_.size() > 0) return read_header();
    // An idle connection holds no more than a small buffer: 10,000 waiting
    // clients each holding the last request's capacity (and a drain buffer)
    // cost ~9 KB a connection, 98 MiB in all (heaptrack).
    buffer_.shrink_to_fit();
    lowest().expires_after(srv_->opts.idle_timeout);
    stream_.async_read_some(buffer_.prepare(first_read_bytes),
                            [self = me()](error_code ec, std::size_t n) {
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  /// The whole request, header and body, must arrive within the request
  /// timeout counted from now.
  void read_header() {
    phase_ = phase::reading;
    began_ = std::chrono::steady_clock::now();
    lowest().expires_after(srv_->opts.request_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = me()](error_code ec, std::size_t) {
                               self->on_header(ec);
                             });
  }

  void on_header(error_code ec) {
    if (ec) return on_read_error(ec);
    auto& msg = parser_->get();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    if (lower(msg[bhttp::field::expect]) == "100-continue"
        && !parser_->is_done()) {
      static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(cont.data(), cont.size()),
                        [self = me()](error_code ec, std::size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = me()](error_code ec, std::size_t) {
                        if (ec) return self->on_read_error(ec);
                        self->lowest().expires_never();
                        self->on_request();
                      });
  }

  void on_read_error(error_code ec) {
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      return write(error_response(413, "payload_too_large",
                                  "request body exceeds "
                                    + std::to_string(srv_->opts.max_body_bytes)
                                    + " bytes"));
    }
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream
        || ec == bhttp::error::partial_message || ec == asio::error::eof
        || ec == asio::error::operation_aborted
        || ec == asio::error::connection_reset
        || ec.category() == asio::error::get_system_category())
      return close();
    // The request line or a header is malformed: say so, then close (the
    // stream cannot be resynchronised).
    keep_alive_ = false;
    std::string method;
    if (parser_->is_header_done())
      method = std::string{parser_->get().method_string()};
    write(error_response(400, "invalid_argument",
                         "malformed request: the request line or a header "
                         "could not be read ("
                           + ec.message() + "), or the method ("
                           + workflow::printable(method, 16)
                           + ") is not one of GET, HEAD, POST, PUT, DELETE, "
                             "OPTIONS, PATCH"));
  }

  void on_request() {
    auto& msg = parser_->get();
    request req;
    req.method = std::string{msg.method_string()};
    req.target = std::string{msg.target()};
    auto parts = split_target(req.target);
    req.path = std::move(parts.path);
    req.query = std::move(parts.query);
    for (const auto& field : msg)
      req.headers.emplace(lower(field.name_string()),
                          std::string{field.value()});
    req.body = std::move(msg.body());
    req.client_subject = client_subject_;
    head_ = msg.method() == bhttp::verb::head;
    // Read out: a request that waits (for an execution's end) holds no
    // parsed copy of itself.
    parser_.reset();
    phase_ = phase::handling;
    srv_->dispatch(me(), std::move(req), head_);
  }

  void on_write(error_code ec, bool keep_alive) {
    if (ec) return close();
    if (!keep_alive) return linger();
    read_first();
  }

  /// Closes gracefully: no more sending, then reads (and drops) what the
  /// client still sends for a while, so that it reads the last answer
  /// instead of a reset.
  void linger() {
    phase_ = phase::closing;
    // A stopping server waits for nothing more from its clients.
    lowest().expires_after(
      srv_->stopping.load() ? std::chrono::milliseconds{100} : linger_time);
    if constexpr (secure) {
      // TLS ends with close_notify both ways; the client's, an error or
      // the timeout closes.
      stream_.async_shutdown([self = me()](error_code) {
        self->close();
      });
    } else {
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      drain();
    }
  }

  void drain() {
    if (!drain_) drain_ = std::make_unique<std::array<char, 4096>>();
    stream_.async_read_some(asio::buffer(*drain_),
                            [self = me()](error_code ec, std::size_t) {
                              if (ec) return self->close();
                              self->drain();
                            });
  }

  void close() {
    if (phase_ == phase::closed) return;
    phase_ = phase::closed;
    stop_stream();
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
    unregister();
  }

  Stream stream_;
  /// The subject of the client's verified certificate ("" without one).
  std::string client_subject_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  /// Only a closing connection reads (and drops) what still comes.
  std::unique_ptr<std::array<char, 4096>> drain_;
  phase phase_ = phase::idle;
  // A streamed answer: its channel, the pieces waiting (and whether the
  // channel counts them), the keep-alive text's timer.
  std::shared_ptr<stream_channel> channel_;
  std::deque<std::pair<std::string, bool>> out_;
  bool out_writing_ = false;
  bool out_ending_ = false;
  bool chunked_ = true;
  bool watching_ = false;
  bool finished_ = false;
  std::string keepalive_text_;
  std::string stop_text_;
  std::chrono::milliseconds keepalive_every_{0};
  std::optional<asio::steady_timer> keepalive_;
  std::chrono::steady_clock::time_point last_sent_
    = std::chrono::steady_clock::now();
  bool head_ = false;
  unsigned version_ = 11;
};

} // namespace

void exchange::deliver(response res) {
  auto s = session_;
  asio::post(s->strand(), [s, res = std::move(res)]() mutable {
    s->write(std::move(res));
  });
}

stream exchange::open(response head, stream_options opts) {
  auto s = session_;
  auto ch
    = std::make_shared<stream_channel>(s, server_->opts.max_stream_queue_bytes);
  asio::post(s->strand(),
             [s, ch, head = std::move(head), opts = std::move(opts)]() mutable {
               s->begin_stream(std::move(ch), std::move(head), std::move(opts));
             });
  return stream{std::move(ch)};
}

bool stream_channel::write(std::string data) {
  if (!open_.load() || !session_) return false;
  auto n = data.size();
  if (queued_.fetch_add(n) + n > max_queued_) {
    queued_ -= n;
    open_ = false;
    asio::post(session_->strand(), [s = session_] {
      s->stream_abort();
    });
    return false;
  }
  asio::post(session_->strand(),
             [s = session_, data = std::move(data)]() mutable {
               s->stream_push(std::move(data), true);
             });
  return true;
}

void stream_channel::end() {
  // Once ended (the client left, the answer is whole) nothing is posted: a
  // `server::serve` caller's io_context may be gone.
  if (!session_ || !open_.load()) return;
  asio::post(session_->strand(), [s = session_] {
    s->stream_finish();
  });
}

bool stream::write(std::string data) const {
  return ch_ && ch_->write(std::move(data));
}

void stream::end() const {
  if (ch_) ch_->end();
}

void stream::on_end(std::function<void()> f) const {
  if (ch_)
    ch_->on_end(std::move(f));
  else if (f)
    f();
}

bool stream::open() const {
  return ch_ && ch_->open();
}

void server::impl::do_accept() {
  acceptor.async_accept(asio::make_strand(io),
                        [this](error_code ec, tcp::socket sock) {
                          on_accept(ec, std::move(sock));
                        });
}

void server::impl::on_accept(error_code ec, tcp::socket sock) {
  if (ec == asio::error::operation_aborted || stopping.load()) return;
  if (ec) {
    // Out of file descriptors, most likely: try again shortly rather than
    // spin.
    spdlog::warn("HTTP accept failed: {}", ec.message());
    accept_retry.expires_after(std::chrono::milliseconds{50});
    accept_retry.async_wait([this](error_code ec) {
      if (!ec && !stopping.load()) do_accept();
    });
    return;
  }
  error_code ignored;
  sock.set_option(tcp::no_delay{true}, ignored);
  std::uint64_t id = 0;
  {
    std::lock_guard<std::mutex> guard{mtx};
    if (sessions.size() < opts.max_connections) id = ++next_id;
  }
  std::shared_ptr<session_base> s;
  if (tls)
    s = std::make_shared<session<tls_stream>>(std::move(sock), this, id, *tls);
  else
    s = std::make_shared<session<plain_stream>>(std::move(sock), this, id);
  if (id == 0) {
    s->refuse(error_response(503, "unavailable",
                             "too many open connections ("
                               + std::to_string(opts.max_connections)
                               + "); retry later"));
  } else {
    {
      std::lock_guard<std::mutex> guard{mtx};
      sessions.emplace(id, s);
    }
    s->start();
  }
  do_accept();
}

caf::error server::impl::make_tls_context() {
  auto failed = [](const std::string& what, const error_code& ec) {
    return actors::make_error(actors::errc::invalid_argument,
                              "TLS " + what + ": " + ec.message());
  };
  error_code ec;
  auto& ctx = tls.emplace(asio::ssl::context::tls_server);
  ctx.set_options(
    asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2
      | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1
      | asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_compression,
    ec);
  if (ec) return failed("options", ec);
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1)
    return actors::make_error(actors::errc::invalid_argument,
                              "TLS: cannot require TLS 1.2 or later");
  const auto& pem = opts.tls;
  ctx.use_certificate_chain(asio::buffer(pem.cert_chain), ec);
  if (ec) return failed("certificate chain", ec);
  ctx.use_private_key(asio::buffer(pem.key), asio::ssl::context::pem, ec);
  if (ec) return failed("private key", ec);
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    return actors::make_error(actors::errc::invalid_argument,
                              "TLS: the private key does not match the "
                              "certificate");
  if (!pem.client_ca.empty()) {
    ctx.add_certificate_authority(asio::buffer(pem.client_ca), ec);
    if (ec) return failed("client CA", ec);
    ctx.set_verify_mode(
      asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return failed("client verification", ec);
    // Sessions resumed by a verified client need a context to be bound to.
    static constexpr unsigned char id_context[] = "cerebelum-http";
    SSL_CTX_set_session_id_context(ctx.native_handle(), id_context,
                                   sizeof id_context - 1);
  }
  return {};
}

void server::impl::handshake_failed(const error_code& ec,
                                    const std::string& peer) {
  // A flood of bad clients must not become a flood of log lines: one line
  // a second at most, counting those it stands for.
  ++handshakes_failed;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count();
  auto last = handshake_logged_ms.load();
  if (now - last < 1000
      || !handshake_logged_ms.compare_exchange_strong(last, now))
    return;
  auto n = handshakes_failed.exchange(0);
  spdlog::warn("HTTPS: {} TLS handshake{} failed since the last report; the "
               "last, from {}: {}",
               n, n == 1 ? "" : "s", peer, ec.message());
}

void server::impl::dispatch(std::shared_ptr<requester> s, request req,
                            bool head) {
  if (!known_method(req.method)) {
    s->keep_alive_ = false;
    return s->write(error_response(
      400, "invalid_argument",
      "malformed request: the request line or a header could not be read, "
      "or the method ("
        + workflow::printable(req.method, 16)
        + ") is not one of GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"));
  }
  const std::string method = head ? "GET" : req.method;
  std::string allow;
  for (const auto& r : routes) {
    std::smatch m;
    if (!std::regex_match(req.path, m, r.pattern)) continue;
    if (r.method == method) {
      s->route_ = r.text;
      for (std::size_t i = 1; i < m.size(); ++i)
        req.captures.push_back(m[i].str());
      auto ex = std::make_shared<exchange>(s, self.lock());
      s->pending_ = ex;
      auto runner = s->handlers_ ? *s->handlers_
                    : large_pool && req.body.size() > opts.large_body_bytes
                      ? large_pool->get_executor()
                      : pool->get_executor();
      asio::post(runner, [run = r.run, req = std::move(req),
                          answer = responder{std::move(ex)}, &guard = guard,
                          &route = r.text]() mutable {
        try {
          if (guard)
            if (auto refused = guard(route, req))
              return answer.send(std::move(*refused));
          run(req, answer);
        } catch (const std::exception& e) {
          answer.send(error_response(500, "internal",
                                     workflow::printable(e.what(), 300)));
        } catch (...) {
          answer.send(error_response(500, "internal", "unknown exception"));
        }
      });
      return;
    }
    allow += (allow.empty() ? "" : ", ") + r.method;
    if (r.method == "GET") allow += ", HEAD";
  }
  if (!allow.empty()) {
    auto res = error_response(
      405, "method_not_allowed",
      "method " + workflow::printable(req.method, 16) + " is not allowed on "
        + workflow::printable(req.path, 120) + " (allowed: " + allow + ")");
    res.set_header("Allow", allow);
    return s->write(std::move(res));
  }
  s->write(error_response(404, "not_found",
                          "no route " + workflow::printable(req.method, 16)
                            + " " + workflow::printable(req.path, 120)));
}

std::string request::header(std::string_view name) const {
  auto i = headers.find(lower(name));
  return i == headers.end() ? std::string{} : i->second;
}

response error_response(int status, const std::string& code,
                        const std::string& message) {
  response res;
  res.status = status;
  res.body = workflow::safe_dump(
    nlohmann::json{{"error", {{"code", code}, {"message", message}}}});
  return res;
}

void responder::send(response res) const {
  if (ex_->claim()) ex_->deliver(std::move(res));
}

stream responder::open_stream(response head, stream_options opts) const {
  if (!ex_->claim()) return stream{stream_channel::ended_one()};
  return ex_->open(std::move(head), std::move(opts));
}

server::server(server_options opts) : impl_(std::make_shared<impl>(opts)) {
  impl_->self = impl_;
}

server::~server() {
  stop();
}

void server::route(std::string method, const std::string& pattern, handler h) {
  impl_->routes.push_back(
    {std::move(method), std::regex{pattern}, std::move(h), pattern});
}

void server::observe(answer_observer o) {
  impl_->observer = std::move(o);
}

void server::check_with(request_guard g) {
  impl_->guard = std::move(g);
}

void server::on_stop(response res) {
  impl_->stop_answer = std::move(res);
}

caf::error server::listen(const std::string& host, int port) {
  auto& s = *impl_;
  auto where = host + ":" + std::to_string(port);
  error_code ec;
  tcp::resolver resolver{s.io};
  auto found = resolver.resolve(host, std::to_string(port),
                                tcp::resolver::passive, ec);
  if (ec || found.empty())
    return actors::make_error(actors::errc::invalid_argument,
                              "cannot resolve " + where + ": " + ec.message());
  auto endpoint = found.begin()->endpoint();
  if (s.opts.tls.enabled())
    if (auto err = s.make_tls_context()) return err;
  s.acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR allows a quick restart; SO_REUSEPORT is not set, so a
  // second server on the same port fails here.
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address{true}, ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(s.opts.backlog, ec);
  if (ec) {
    error_code ignored;
    s.acceptor.close(ignored);
    return actors::make_error(actors::errc::unavailable,
                              "bind or listen failed: " + ec.message());
  }
  s.port = s.acceptor.local_endpoint().port();
  s.pool = std::make_unique<asio::thread_pool>(
    static_cast<std::size_t>(std::max(1, s.opts.handler_threads)));
  if (s.opts.large_body_bytes > 0)
    s.large_pool = std::make_unique<asio::thread_pool>(
      static_cast<std::size_t>(std::max(1, s.opts.large_handler_threads)));
  s.work.emplace(s.io.get_executor());
  s.started = true;
  s.do_accept();
  for (int i = 0; i < std::max(1, s.opts.io_threads); ++i)
    s.threads.emplace_back([&s] {
      for (;;) {
        try {
          s.io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("HTTP server: a handler threw: {}", e.what());
        }
      }
    });
  return {};
}

response server::serve(request req) {
  auto parts = split_target(req.target);
  req.path = std::move(parts.path);
  req.query = std::move(parts.query);
  std::multimap<std::string, std::string> headers;
  for (auto& [name, value] : req.headers)
    headers.emplace(lower(name), std::move(value));
  req.headers = std::move(headers);
  req.captures.clear();
  req.principal.clear();
  req.workflows.clear();
  bool head = req.method == "HEAD";
  asio::io_context ctx;
  auto r = std::make_shared<local_requester>(ctx, impl_.get(), head);
  impl_->dispatch(r, std::move(req), head);
  ctx.run();
  return r->take();
}

int server::port() const {
  return impl_->port;
}

std::size_t server::connections() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->sessions.size();
}

void server::stop() {
  auto& s = *impl_;
  if (!s.started || s.stopping.exchange(true)) return;
  asio::post(s.io, [&s] {
    error_code ignored;
    s.acceptor.close(ignored);
    s.accept_retry.cancel();
  });
  auto each_session = [&s](bool answer_pending) {
    std::vector<std::shared_ptr<session_base>> open;
    {
      std::lock_guard<std::mutex> guard{s.mtx};
      for (auto& [id, weak] : s.sessions)
        if (auto p = weak.lock()) open.push_back(std::move(p));
    }
    for (auto& p : open)
      p->server_stopping(answer_pending);
  };
  // Idle connections close now; requests read before the stop are served
  // as usual (a keep-alive connection closes after its answer).
  each_session(false);
  for (auto* p : {s.pool.get(), s.large_pool.get()})
    if (p) p->join();
  // What is still pending waits for the engine: answer it, then give the
  // connections a moment to take their last answers.
  each_session(true);
  {
    std::unique_lock<std::mutex> guard{s.mtx};
    s.cv.wait_for(guard, stop_grace, [&s] {
      return s.sessions.empty();
    });
  }
  s.work.reset();
  s.io.stop();
  for (auto& t : s.threads)
    t.join();
  s.threads.clear();
  // A request read after the pools were joined was never handled: dropping
  // its queued handler releases its exchange.
  s.pool.reset();
  s.large_pool.reset();
}

} // namespace cerebelum::api::http
