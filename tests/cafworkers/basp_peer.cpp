#include "tests/cafworkers/basp_peer.hpp"

#include <caf/atom.hpp>

#include "tests/support/scratch.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cerebelum::test {

namespace {

using clock_type = std::chrono::steady_clock;

int remaining_ms(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    deadline - clock_type::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// Reads exactly `n` bytes before `deadline`.
bool read_exactly(int fd, std::uint8_t* out, std::size_t n,
                  clock_type::time_point deadline) {
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) return false;
    auto got = ::recv(fd, out, n, 0);
    if (got <= 0) return false;
    out += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

void put_be(bytes& out, std::uint64_t x, int size) {
  for (int i = size - 1; i >= 0; --i)
    out.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}

} // namespace

raw_peer::raw_peer(int port) : fd_(connect_loopback(port)) {
  // nop
}

raw_peer::raw_peer(adopt a) : fd_(a.fd) {
  // nop
}

raw_peer::~raw_peer() {
  if (fd_ >= 0) ::close(fd_);
}

int raw_peer::local_port() const {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

std::optional<std::uint64_t>
raw_peer::read_server_handshake(std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  std::uint8_t raw[caf_guard::basp_header_size];
  if (!read_exactly(fd_, raw, sizeof(raw), deadline)) return std::nullopt;
  auto hdr = caf_guard::decode_header(raw);
  if (hdr.operation != 0) return std::nullopt;
  bytes payload(hdr.payload_len);
  if (!read_exactly(fd_, payload.data(), payload.size(), deadline))
    return std::nullopt;
  // node id (32), app ids (count, then length-prefixed strings), actor id.
  std::size_t pos = 32;
  auto varbyte = [&]() -> std::size_t {
    std::size_t x = 0;
    for (int n = 0; pos < payload.size(); ++n) {
      auto b = payload[pos++];
      x |= static_cast<std::size_t>(b & 0x7F) << (7 * n);
      if ((b & 0x80) == 0) break;
    }
    return x;
  };
  auto ids = varbyte();
  for (std::size_t i = 0; i < ids; ++i)
    pos += varbyte();
  if (pos + 8 > payload.size()) return std::nullopt;
  std::uint64_t aid = 0;
  for (int i = 0; i < 8; ++i)
    aid = (aid << 8) | payload[pos + i];
  return aid;
}

bool raw_peer::send(const bytes& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    auto n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void raw_peer::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

bool raw_peer::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  std::uint8_t sink[4096];
  for (;;) {
    pollfd pfd{fd_, POLLIN, 0};
    auto rc = ::poll(&pfd, 1, remaining_ms(deadline));
    if (rc == 0) return false;
    if (rc < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    auto n = ::recv(fd_, sink, sizeof(sink), 0);
    if (n == 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return true; // reset
  }
}

bytes frame(const caf_guard::basp_header& hdr, const bytes& payload) {
  auto out = caf_guard::encode_header(hdr);
  append(out, payload);
  return out;
}

bytes node_id(std::uint32_t pid, std::uint8_t host_fill) {
  bytes out;
  put_be(out, static_cast<std::uint64_t>(caf::atom("default")), 8);
  put_be(out, pid, 4);
  out.insert(out.end(), 20, host_fill);
  return out;
}

bytes client_handshake(std::uint32_t pid) {
  caf_guard::basp_header hdr;
  hdr.operation = 0x01;
  return sized_frame(hdr, node_id(pid));
}

bytes sized_frame(caf_guard::basp_header hdr, const bytes& payload) {
  hdr.payload_len = static_cast<std::uint32_t>(payload.size());
  return frame(hdr, payload);
}

void append(bytes& x, const bytes& more) {
  x.insert(x.end(), more.begin(), more.end());
}

bytes message_payload(const std::string& types, const bytes& values) {
  bytes out;
  out.reserve(4 + types.size() + values.size());
  out.push_back(0x00);
  out.push_back(0x00);
  out.push_back(0x00);
  out.push_back(static_cast<std::uint8_t>(types.size()));
  for (auto c : types)
    out.push_back(static_cast<std::uint8_t>(c));
  append(out, values);
  return out;
}

} // namespace cerebelum::test
