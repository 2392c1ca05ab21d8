#include "src/bridges/caf/guard.hpp"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "actors/errc.hpp"

namespace cerebelum::caf_guard {

namespace {

using clock_type = std::chrono::steady_clock;

/// Owns a file descriptor.
class fd_handle {
 public:
  fd_handle() = default;
  explicit fd_handle(int fd) : fd_(fd) {
    // nop
  }
  fd_handle(fd_handle&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {
    // nop
  }
  fd_handle& operator=(fd_handle&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~fd_handle() {
    reset();
  }
  int get() const {
    return fd_;
  }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/// A fixed-size byte buffer: data in [0, size); never grows.
class byte_buffer {
 public:
  explicit byte_buffer(std::size_t capacity)
    : data_(new std::uint8_t[capacity]), capacity_(capacity) {
    // nop
  }
  std::uint8_t* data() {
    return data_.get();
  }
  std::size_t size() const {
    return size_;
  }
  std::size_t space() const {
    return capacity_ - size_;
  }
  std::uint8_t* tail() {
    return data_.get() + size_;
  }
  void grow(std::size_t n) {
    size_ += n;
  }
  /// Drops the first `n` bytes.
  void consume(std::size_t n) {
    std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= n;
  }

 private:
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t capacity_;
  std::size_t size_ = 0;
};

/// One relayed connection.
struct connection {
  connection(fd_handle client_fd, std::string peer_name,
             const guard_options& opts, const tls_server* tls_srv,
             clock_type::time_point now)
    : client(std::move(client_fd)),
      peer(std::move(peer_name)),
      up(opts.buffer_size),
      down(opts.buffer_size),
      cipher_out(tls_srv != nullptr ? opts.buffer_size : 0),
      checker(opts.limits),
      handshake_deadline(now + opts.handshake_timeout) {
    if (tls_srv != nullptr) tls = std::make_unique<tls_pipe>(*tls_srv);
  }

  /// What goes to the worker's socket: ciphertext with TLS, else `down`.
  byte_buffer& to_client() {
    return tls ? cipher_out : down;
  }

  fd_handle client;
  fd_handle inner;
  std::string peer;
  /// With TLS and a client CA: the certificate's subject, bound to this
  /// connection from the TLS handshake until the connection closes.
  peer_subjects::binding cert_binding;
  /// Whether the handshake's node id was claimed for `cert_binding`.
  bool node_claimed = false;
  /// Whether the TLS handshake's end was seen.
  bool tls_ready = false;
  /// Worker -> node bytes; the first `checked` may be sent.
  byte_buffer up;
  std::size_t checked = 0;
  /// Node -> worker bytes.
  byte_buffer down;
  /// With TLS: the worker's session, and ciphertext for the worker.
  std::unique_ptr<tls_pipe> tls;
  byte_buffer cipher_out;
  basp_checker checker;
  /// Tells `checker` which node actors the worker may address.
  basp_server_tracker tracker;
  clock_type::time_point handshake_deadline;
  /// Set when the connection is to be closed after this round.
  bool done = false;
};

/// At most `burst` lines at once and one per second after that; a logged
/// line says how many were left out before it.
class rate_limited_log {
 public:
  void warn(clock_type::time_point now, const std::string& line) {
    auto elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst, tokens_ + elapsed);
    if (tokens_ < 1.0) {
      ++suppressed_;
      return;
    }
    tokens_ -= 1.0;
    if (suppressed_ > 0) {
      spdlog::warn("{} ({} similar lines left out)", line, suppressed_);
      suppressed_ = 0;
    } else {
      spdlog::warn("{}", line);
    }
  }

 private:
  static constexpr double burst = 10.0;
  double tokens_ = burst;
  clock_type::time_point last_ = clock_type::now();
  std::uint64_t suppressed_ = 0;
};

/// Milliseconds until `at` (rounded up, at least 0), or -1 (no timeout).
int poll_timeout(std::optional<clock_type::time_point> at,
                 clock_type::time_point now) {
  if (!at) return -1;
  if (*at <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*at - now).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string sockaddr_text(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    return std::string{host} + ":" + std::to_string(port);
  }
  if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
  }
  return "[" + std::string{host} + "]:" + std::to_string(port);
}

bool is_loopback(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)
           && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

void set_nodelay(int fd) {
  int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
}

/// Binds and listens on `host:port`; returns the socket or an error text.
caf::expected<fd_handle> listen_on(const std::string& host,
                                   std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  auto where = host + ":" + service;
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0)
    return actors::make_error(actors::errc::unavailable,
                              "cannot resolve the CAF worker address " + where
                                + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list{found, ::freeaddrinfo};
  std::string last_error = "no address";
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    fd_handle fd{::socket(ai->ai_family,
                          ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          ai->ai_protocol)};
    if (fd.get() < 0) {
      last_error = errno_text(errno);
      continue;
    }
    // Quick restarts; no SO_REUSEPORT, so a second node cannot bind it.
    int yes = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0
        || ::listen(fd.get(), 128) != 0) {
      last_error = errno_text(errno);
      continue;
    }
    return fd;
  }
  return actors::make_error(actors::errc::unavailable,
                            "cannot listen on " + where
                              + " (CAF worker port): " + last_error);
}

} // namespace

struct guard::impl {
  guard_options opts;
  fd_handle listener;
  fd_handle wake;
  sockaddr_storage bound{};
  std::string address;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::function<void()> on_fatal;
  std::shared_ptr<tls_server> tls;

  // Owned by the relay thread.
  std::list<connection> conns;
  rate_limited_log log;
  clock_type::time_point listener_paused_until{};

  mutable std::mutex stats_mtx;
  guard_stats stats;

  void run() {
    try {
      loop();
    } catch (const std::exception& e) {
      spdlog::critical("CAF worker port guard on {} failed: {}", address,
                       e.what());
      conns.clear();
      if (on_fatal) on_fatal();
    }
  }

  void count(std::uint64_t guard_stats::*field) {
    std::lock_guard<std::mutex> guard{stats_mtx};
    ++(stats.*field);
  }

  void loop() {
    std::vector<pollfd> fds;
    while (!stopping.load()) {
      auto now = clock_type::now();
      fds.clear();
      fds.push_back({wake.get(), POLLIN, 0});
      bool listening = now >= listener_paused_until;
      fds.push_back({listening ? listener.get() : -1, POLLIN, 0});
      std::optional<clock_type::time_point> wake_at;
      if (!listening) wake_at = listener_paused_until;
      for (auto& c : conns) {
        short client_events = 0;
        short inner_events = 0;
        if (c.tls ? c.tls->buffered_in() < opts.buffer_size : c.up.space() > 0)
          client_events |= POLLIN;
        if (c.to_client().size() > 0) client_events |= POLLOUT;
        if (c.down.space() > 0) inner_events |= POLLIN;
        if (c.checked > 0) inner_events |= POLLOUT;
        fds.push_back({c.client.get(), client_events, 0});
        fds.push_back({c.inner.get(), inner_events, 0});
        if (c.checker.frames() == 0
            && (!wake_at || c.handshake_deadline < *wake_at))
          wake_at = c.handshake_deadline;
      }
      int rc = ::poll(fds.data(), fds.size(), poll_timeout(wake_at, now));
      if (rc < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error("poll: " + errno_text(errno));
      }
      now = clock_type::now();
      std::size_t i = 2;
      for (auto& c : conns) {
        serve(c, fds[i].revents, fds[i + 1].revents, now);
        i += 2;
      }
      conns.remove_if([](const connection& c) {
        return c.done;
      });
      if (fds[1].revents != 0) accept_all(now);
    }
    conns.clear();
  }

  void accept_all(clock_type::time_point now) {
    // Bounded per round so relaying goes on under a flood of connects.
    for (int n = 0; n < 64; ++n) {
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      fd_handle fd{::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer),
                             &len, SOCK_NONBLOCK | SOCK_CLOEXEC)};
      if (fd.get() < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
            || errno == ECONNABORTED)
          return;
        // Out of descriptors: the listener stays readable; wait a moment.
        log.warn(now, fmt::format("CAF worker port {}: accept failed: {}",
                                  address, errno_text(errno)));
        listener_paused_until = now + std::chrono::milliseconds{100};
        return;
      }
      auto name = sockaddr_text(peer);
      if (conns.size() >= opts.max_connections) {
        count(&guard_stats::refused_connections);
        log.warn(
          now,
          fmt::format("CAF worker port {}: refused {}: {} connections already "
                      "(the limit)",
                      address, name, opts.max_connections));
        continue;
      }
      std::string why = "no worker gateway";
      fd_handle inner{opts.upstream ? opts.upstream->open(why) : -1};
      if (inner.get() < 0) {
        count(&guard_stats::refused_connections);
        log.warn(now, fmt::format("CAF worker port {}: refused {}: {}", address,
                                  name, why));
        continue;
      }
      set_nodelay(fd.get());
      count(&guard_stats::accepted);
      spdlog::debug("CAF worker port {}: {} connected", address, name);
      auto& c = conns.emplace_back(std::move(fd), std::move(name), opts,
                                   tls.get(), now);
      c.inner = std::move(inner);
    }
  }

  /// Ends `c` (both sockets close when it is removed).
  void close(connection& c, clock_type::time_point now,
             const std::string& reason, bool bad) {
    if (c.done) return;
    c.done = true;
    c.cert_binding.reset();
    if (bad) {
      count(&guard_stats::rejected_frames);
      log.warn(now, fmt::format("CAF worker port {}: closed {}: {}", address,
                                c.peer, reason));
    } else {
      spdlog::debug("CAF worker port {}: {} closed: {}", address, c.peer,
                    reason);
    }
  }

  void serve(connection& c, short client_ev, short inner_ev,
             clock_type::time_point now) {
    if (client_ev & POLLIN) read_client(c, now);
    if (inner_ev & POLLIN) read_inner(c, now);
    pump_tls(c, now);
    if (c.checked > 0) write_inner(c, now);
    if (c.to_client().size() > 0) write_client(c, now);
    pump_tls(c, now);
    if ((client_ev & (POLLERR | POLLHUP)) && !(client_ev & POLLIN))
      end(c, now, "worker connection lost");
    if ((inner_ev & (POLLERR | POLLHUP)) && !(inner_ev & POLLIN))
      end(c, now, "node side closed");
    if (!c.done && c.checker.frames() == 0 && now >= c.handshake_deadline)
      close(c, now, "no client_handshake within the handshake timeout", true);
  }

  /// Ends `c` after one last attempt to pass on what was checked, so that a
  /// worker's last message before it exits still arrives.
  void end(connection& c, clock_type::time_point now,
           const std::string& reason) {
    if (c.done) return;
    if (c.checked > 0) write_inner(c, now);
    close(c, now, reason, false);
  }

  void read_client(connection& c, clock_type::time_point now) {
    if (c.done) return;
    std::uint8_t cipher[16 * 1024];
    auto* into = c.tls ? cipher : c.up.tail();
    auto room = c.tls ? sizeof(cipher) : c.up.space();
    if (room == 0) return;
    auto n = ::recv(c.client.get(), into, room, 0);
    if (n == 0) {
      end(c, now, "worker closed the connection");
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        end(c, now, "worker connection: " + errno_text(errno));
      return;
    }
    if (c.tls) {
      c.tls->feed(cipher, static_cast<std::size_t>(n));
      return; // decrypted by pump_tls
    }
    c.up.grow(static_cast<std::size_t>(n));
    check_up(c, now);
  }

  /// Runs the frame checks over the worker's bytes not checked yet.
  void check_up(connection& c, clock_type::time_point now) {
    auto verdict = c.checker.feed(c.up.data() + c.checked,
                                  c.up.size() - c.checked);
    c.checked += verdict.forward;
    if (verdict.error) {
      close(c, now, *verdict.error, true);
      return;
    }
    // Before the handshake reaches CAF: a certificate's connection may not
    // share its node id (peer_subjects.hpp).
    if (!c.node_claimed && c.cert_binding.bound()
        && !c.checker.node_id().empty()) {
      const auto& id = c.checker.node_id();
      c.node_claimed = true;
      if (!opts.peers->claim_node(c.cert_binding,
                                  std::string{id.begin(), id.end()}))
        close(c, now,
              "client_handshake names the CAF node id of another live "
              "connection",
              true);
    }
  }

  /// With TLS: decrypts what the worker sent into `up` (checked there),
  /// encrypts what the node sent from `down`, and moves the ciphertext for
  /// the worker into `cipher_out`.
  void pump_tls(connection& c, clock_type::time_point now) {
    if (!c.tls || c.done) return;
    auto& tls = *c.tls;
    while (c.up.space() > 0) {
      auto n = tls.read(c.up.tail(), c.up.space());
      if (!n) {
        auto text = actors::api_error_message(n.error());
        if (tls.closed())
          end(c, now, text);
        else
          close(c, now, text, true);
        return;
      }
      tls_established(c);
      if (*n == 0) break;
      c.up.grow(*n);
      check_up(c, now);
      if (c.done) return;
    }
    tls_established(c);
    while (c.down.size() > 0 && tls.pending_out() < opts.buffer_size) {
      auto n = tls.write(c.down.data(),
                         std::min<std::size_t>(c.down.size(), 16 * 1024));
      if (!n) {
        close(c, now, actors::api_error_message(n.error()), true);
        return;
      }
      if (*n == 0) break;
      c.down.consume(*n);
    }
    c.cipher_out.grow(tls.drain(c.cipher_out.tail(), c.cipher_out.space()));
  }

  /// Once the TLS handshake of `c` is done, binds its verified subject to
  /// the connection: before the first plaintext byte is checked and
  /// relayed, so that the handshake's node id is claimed for it before CAF
  /// reads the worker's registration.
  void tls_established(connection& c) {
    if (c.tls_ready || !c.tls->handshake_done()) return;
    c.tls_ready = true;
    auto subject = c.tls->peer_subject();
    if (!subject.empty() && opts.peers)
      c.cert_binding = opts.peers->bind(subject);
    spdlog::debug("CAF worker port {}: {} TLS session established ({})",
                  address, c.peer,
                  subject.empty() ? "no verified client certificate"
                                  : "client certificate '" + subject + "'");
  }

  void read_inner(connection& c, clock_type::time_point now) {
    if (c.done || c.down.space() == 0) return;
    auto n = ::recv(c.inner.get(), c.down.tail(), c.down.space(), 0);
    if (n == 0) {
      end(c, now, "node closed the connection");
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        end(c, now, "node connection: " + errno_text(errno));
      return;
    }
    auto* fresh = c.down.tail();
    c.down.grow(static_cast<std::size_t>(n));
    if (auto err = c.tracker.feed(fresh, static_cast<std::size_t>(n),
                                  c.checker))
      close(c, now, *err, true);
  }

  void write_inner(connection& c, clock_type::time_point now) {
    if (c.done) return;
    auto n = ::send(c.inner.get(), c.up.data(), c.checked, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        close(c, now, "node connection: " + errno_text(errno), false);
      return;
    }
    c.up.consume(static_cast<std::size_t>(n));
    c.checked -= static_cast<std::size_t>(n);
  }

  void write_client(connection& c, clock_type::time_point now) {
    if (c.done) return;
    auto& out = c.to_client();
    auto n = ::send(c.client.get(), out.data(), out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        close(c, now, "worker connection: " + errno_text(errno), false);
      return;
    }
    out.consume(static_cast<std::size_t>(n));
  }
};

caf::expected<std::unique_ptr<guard>>
guard::start(guard_options opts, std::function<void()> on_fatal) {
  if (opts.limits.allowed_types.empty())
    opts.limits.allowed_types = worker_type_names();
  auto ptr = std::make_unique<impl>();
  if (opts.tls.enabled()) {
    auto tls = tls_server::make(opts.tls);
    if (!tls) return std::move(tls.error());
    ptr->tls = std::move(*tls);
  }
  auto listener = listen_on(opts.host, opts.port);
  if (!listener) return std::move(listener.error());
  ptr->listener = std::move(*listener);
  socklen_t len = sizeof(ptr->bound);
  ::getsockname(ptr->listener.get(), reinterpret_cast<sockaddr*>(&ptr->bound),
                &len);
  ptr->address = sockaddr_text(ptr->bound);
  ptr->wake = fd_handle{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  if (ptr->wake.get() < 0)
    return actors::make_error(actors::errc::unavailable,
                              "eventfd: " + errno_text(errno));
  ptr->opts = std::move(opts);
  ptr->on_fatal = std::move(on_fatal);
  auto* raw = ptr.get();
  ptr->thread = std::thread{[raw] {
    raw->run();
  }};
  return std::unique_ptr<guard>{new guard(std::move(ptr))};
}

guard::guard(std::unique_ptr<impl> ptr) : impl_(std::move(ptr)) {
  // nop
}

guard::~guard() {
  stop();
}

std::uint16_t guard::port() const {
  if (impl_->bound.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&impl_->bound)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&impl_->bound)->sin6_port);
}

const std::string& guard::address() const {
  return impl_->address;
}

bool guard::loopback() const {
  return is_loopback(impl_->bound);
}

void guard::stop() {
  if (impl_->stopping.exchange(true)) return;
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake.get(), &one, sizeof(one));
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->listener.reset();
}

guard_stats guard::stats() const {
  std::lock_guard<std::mutex> lock{impl_->stats_mtx};
  return impl_->stats;
}

} // namespace cerebelum::caf_guard
