// The CAF worker port against hostile peers, on the real node binary: BASP
// bytes that crash libcaf_io 0.17.6 or make it reserve gigabytes close
// their connection only; the node lives on and real workers still work.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "tests/cafworkers/basp_peer.hpp"
#include "tests/cafworkers/caf_fixture.hpp"
#include "tests/cafworkers/guard_checks.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using cerebelum::caf_guard::basp_header;

namespace {

/// Connects a raw peer and reads the node's server handshake; returns the
/// published gateway's actor id.
std::uint64_t open_peer(raw_peer& peer) {
  REQUIRE(peer.ok());
  auto aid = peer.read_server_handshake(10s);
  REQUIRE(aid);
  return *aid;
}

/// The line of the node's startup output that contains `needle`.
std::optional<std::string> startup_line(caf_node& node,
                                        const std::string& needle) {
  // The fixture read the output up to "node ready", which comes later.
  std::istringstream in{node.process().output()};
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) return line;
  return std::nullopt;
}

/// The node logged that it closed `peer` (one line naming it).
void require_close_logged(caf_node& node, const raw_peer& peer) {
  auto needle = "closed 127.0.0.1:" + std::to_string(peer.local_port());
  auto line = node.process().wait_for_line(needle, 10s);
  INFO(node.process().output());
  REQUIRE(line);
}

} // namespace

TEST_CASE("a BASP client_handshake header with payload length 0 does not "
          "crash the node") {
  caf_node node;
  raw_peer peer{node.caf_port};
  open_peer(peer);
  bytes hdr(32, 0);
  hdr[0] = 0x01; // client_handshake, payload_len 0
  REQUIRE(peer.send(hdr));
  CHECK(peer.wait_closed(10s));
  require_close_logged(node, peer);
  require_node_serves(node);
  require_worker_completes(node, "after-zero-handshake");
}

TEST_CASE("a BASP server_handshake or select-connection handshake of length "
          "0 from a client does not crash the node") {
  caf_node node;
  basp_header server_hs;
  server_hs.operation = 0x00;
  server_hs.operation_data = 1; // passes libcaf_io's valid()
  basp_header select_hs;
  select_hs.operation = 0x01;
  select_hs.flags = 0x02;
  for (const auto& hdr : {server_hs, select_hs}) {
    raw_peer first{node.caf_port};
    open_peer(first);
    REQUIRE(first.send(frame(hdr)));
    CHECK(first.wait_closed(10s));
    // The same header after a valid handshake.
    raw_peer second{node.caf_port};
    open_peer(second);
    auto stream = client_handshake();
    append(stream, frame(hdr));
    REQUIRE(second.send(stream));
    CHECK(second.wait_closed(10s));
    require_close_logged(node, second);
  }
  require_node_serves(node);
  require_worker_completes(node, "after-zero-handshakes");
}

// Bound: the node's RSS grows by less than 64 MiB over its idle size (the
// guard buffers 2 x 64 KiB per connection and refuses the header itself).
TEST_CASE("a BASP header declaring a 4 GiB payload does not make the node "
          "reserve it") {
  caf_node node;
  auto pid = node.process().pid();
  auto before = proc_status_kib(pid, "VmRSS");
  REQUIRE(before > 0);
  // One as the first frame, one after a valid handshake.
  raw_peer first{node.caf_port};
  raw_peer second{node.caf_port};
  open_peer(first);
  auto aid = open_peer(second);
  basp_header huge_hs;
  huge_hs.operation = 0x01;
  huge_hs.payload_len = 0xFFFFFFF0u;
  REQUIRE(first.send(frame(huge_hs)));
  basp_header huge_msg;
  huge_msg.operation = 0x02;
  huge_msg.payload_len = 0xFFFFFFF0u;
  huge_msg.dest_actor = aid;
  auto stream = client_handshake();
  append(stream, frame(huge_msg));
  REQUIRE(second.send(stream));
  CHECK(first.wait_closed(10s));
  CHECK(second.wait_closed(10s));
  auto after = proc_status_kib(pid, "VmRSS");
  INFO("RSS before " << before << " KiB, after " << after << " KiB");
  CHECK(after > 0); // -1: the node is gone
  CHECK(after - before < 64 * 1024);
  require_close_logged(node, first);
  require_close_logged(node, second);
  require_node_serves(node);
  require_worker_completes(node, "after-huge-header");
}

TEST_CASE("a message to the worker gateway with a stream message id closes "
          "its connection instead of crashing the node") {
  // Found by the guard's fuzz test (seed 1680929735): CAF's mailbox reads
  // a message whose id is in a stream category as a stream message, and a
  // string there crashed the node (SIGSEGV in downstream_messages::id_of).
  caf_node node;
  for (std::uint64_t category : {2u, 3u}) {
    INFO("category " << category);
    raw_peer peer{node.caf_port};
    auto aid = open_peer(peer);
    basp_header msg;
    msg.operation = 0x02;
    msg.operation_data = (category << 60) | 1;
    msg.source_actor = 8;
    msg.dest_actor = aid;
    auto stream = client_handshake();
    append(stream, sized_frame(msg, message_payload("@<>+@str", {1, 'x'})));
    REQUIRE(peer.send(stream));
    require_close_logged(node, peer);
  }
  require_node_serves(node);
  require_worker_completes(node, "after-stream-ids");
}

TEST_CASE("garbage bytes as a wire message to the worker gateway are "
          "rejected without crashing the node") {
  caf_node node;
  // The wire's types pass the guard; their protobuf bytes are what CAF
  // hands to the wire's parser (one CAF string: varbyte length, bytes).
  auto wire_string = [](const bytes& content, std::uint32_t declared) {
    bytes out;
    for (auto n = declared;; n >>= 7) {
      out.push_back(
        static_cast<std::uint8_t>((n & 0x7F) | (n > 0x7F ? 0x80 : 0)));
      if (n <= 0x7F) break;
    }
    append(out, content);
    return out;
  };
  bytes garbage(64, 0xFF);
  const std::vector<std::pair<std::string, bytes>> cases = {
    // Not a protobuf encoding: a tag of an invalid wire type.
    {"cerebelum::worker::CompleteTaskRequest", wire_string(garbage, 64)},
    {"cerebelum::worker::RegisterRequest", wire_string(garbage, 64)},
    // A length beyond the frame: the string is cut short.
    {"cerebelum::worker::HeartbeatRequest",
     wire_string(garbage, 3 * 1024 * 1024)},
    // A protobuf string field that is not UTF-8.
    {"cerebelum::worker::DrainRequest",
     wire_string(bytes{0x0A, 0x02, 0xC3, 0x28}, 4)},
  };
  std::vector<int> ports;
  for (const auto& [type, values] : cases) {
    INFO(type);
    raw_peer peer{node.caf_port};
    ports.push_back(peer.local_port());
    auto aid = open_peer(peer);
    basp_header msg;
    msg.operation = 0x02;
    msg.operation_data = 1;
    msg.source_actor = 8;
    msg.dest_actor = aid;
    auto stream = client_handshake();
    append(stream, sized_frame(msg, message_payload("@<>+" + type, values)));
    REQUIRE(peer.send(stream));
  }
  require_node_serves(node);
  require_worker_completes(node, "after-garbage-wire-messages");
  // The guard passed them (wire types): the node's CAF parsed and refused.
  REQUIRE(node.process().wait_for_line(
    "CAF worker after-garbage-wire-messages registered", 10s));
  auto out = node.process().output();
  for (auto port : ports)
    CHECK(out.find("closed 127.0.0.1:" + std::to_string(port) + ":")
          == std::string::npos);
  // A peer's bytes do not reach the node's log (libprotobuf would write a
  // line for each string field that is not UTF-8).
  CHECK(out.find("invalid UTF-8") == std::string::npos);
}

namespace {

/// The TCP ports that process `pid` listens on (its sockets in LISTEN
/// state, read from /proc).
std::set<int> listening_ports(pid_t pid) {
  namespace fs = std::filesystem;
  auto proc = "/proc/" + std::to_string(pid);
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(proc + "/fd", ec)) {
    auto target = fs::read_symlink(e.path(), ec).string();
    if (!ec && target.starts_with("socket:["))
      inodes.insert(target.substr(8, target.size() - 9));
  }
  std::set<int> ports;
  for (const char* table : {"/net/tcp", "/net/tcp6"}) {
    std::ifstream in{proc + table};
    std::string line;
    std::getline(in, line); // the header
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout
      // inode ...
      std::istringstream fields{line};
      std::string sl, local, remote, state, skip, inode;
      fields >> sl >> local >> remote >> state >> skip >> skip >> skip >> skip
        >> skip >> inode;
      if (state == "0A" && inodes.count(inode) != 0)
        ports.insert(std::stoi(local.substr(local.find(':') + 1), nullptr, 16));
    }
  }
  return ports;
}

} // namespace

TEST_CASE("the node listens on its gRPC and CAF ports only: CAF takes "
          "workers' connections from the guard and has no port of its own") {
  caf_node node;
  auto worker = start_worker(node, "listen-check");
  auto ports = listening_ports(node.process().pid());
  INFO(node.process().output());
  CHECK(ports == std::set<int>{node.grpc_port, node.caf_port});
  // ... and the worker works through the guard.
  auto [code, out] = node.cli(
    {"start", "caf_invoice", "--id", "inv-listen", "--wait", "--input",
     R"({"items":[{"sku":"a","qty":1,"price_cents":100}],"tax_rate":0,)"
     R"("work_ms":0,"send_after_ms":0})"});
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("completed") != std::string::npos);
}

TEST_CASE("the node logs at startup how the CAF port is secured") {
  caf_node node;
  auto line = startup_line(node, "CAF worker port");
  INFO(node.process().output());
  REQUIRE(line);
  CHECK(line->find("127.0.0.1:" + std::to_string(node.caf_port)
                   + " (no TLS, no tokens)")
        != std::string::npos);
  CHECK(line->find("warn") == std::string::npos);
}

TEST_CASE("the node warns at startup when the CAF port is not bound to "
          "loopback") {
  // Refused without --insecure (docs/security.md; node_security_test).
  caf_node node{{"--caf-host", "0.0.0.0", "--insecure"}};
  auto line = startup_line(node, "CAF worker port");
  INFO(node.process().output());
  REQUIRE(line);
  CHECK(line->find("warn") != std::string::npos);
  CHECK(node.process().output().find("NOT bound to loopback")
        != std::string::npos);
  CHECK(node.process().output().find("--insecure: --caf-host 0.0.0.0")
        != std::string::npos);
}

TEST_CASE("a flood of bad BASP connections is logged a few lines at a time, "
          "not a line each") {
  caf_node node;
  constexpr int flood = 300;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < flood; ++i) {
    raw_peer peer{node.caf_port};
    REQUIRE(peer.ok());
    REQUIRE(peer.send(bytes(32, 0xFF)));
    REQUIRE(peer.wait_closed(10s));
  }
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::steady_clock::now() - started)
                   .count();
  // Each close was logged (or counted) before the peer saw it: the lines
  // are in the pipe already; read them all.
  long lines = 0;
  while (node.process().wait_for_line("closed 127.0.0.1:", 500ms))
    ++lines;
  INFO(lines << " lines for " << flood << " bad connections in " << seconds
             << " s");
  CHECK(lines <= 10 + seconds + 1);
  CHECK(lines >= 1);
  require_node_serves(node);
}
