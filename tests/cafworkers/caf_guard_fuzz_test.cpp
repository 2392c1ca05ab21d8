// A bounded, seeded mutation fuzz of the CAF worker port on the real node
// binary: real BASP streams of a CAF 0.17.6 worker (handshakes, the spawn
// server query, monitor and down messages, every worker protocol message),
// hostile ones (zero-length handshakes, 4 GiB lengths, @charbuf resizes,
// nested messages) and random bytes, mutated. Set CEREBELUM_FUZZ_SEED to
// replay a run.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>

#include "src/bridges/caf/basp_check.hpp"
#include "tests/cafworkers/basp_peer.hpp"
#include "tests/cafworkers/caf_fixture.hpp"
#include "tests/cafworkers/guard_checks.hpp"
#include "wire/wire.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using cerebelum::caf_guard::basp_header;
namespace pb = cerebelum::worker;

namespace {

constexpr std::size_t caf_guard_header = cerebelum::caf_guard::basp_header_size;

constexpr std::uint64_t spawn_serv
  = static_cast<std::uint64_t>(caf::atom("SpawnServ"));

void put_be(bytes& out, std::uint64_t x, int size) {
  for (int i = size - 1; i >= 0; --i)
    out.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}

/// A direct_message payload as CAF writes it: empty forwarding stack, then
/// `msg`.
bytes direct_payload(caf::actor_system& sys, caf::message msg) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  std::vector<caf::strong_actor_ptr> stages;
  auto err = sink(stages, msg);
  REQUIRE_FALSE(err);
  return bytes(buf.begin(), buf.end());
}

basp_header direct(std::uint64_t dest, std::uint64_t mid = 1) {
  basp_header hdr;
  hdr.operation = 0x02;
  hdr.operation_data = mid;
  hdr.source_actor = 7;
  hdr.dest_actor = dest;
  return hdr;
}

/// Streams a worker could send (and hostile ones), each starting with a
/// client_handshake, to mutate.
std::vector<bytes> make_corpus(caf::actor_system& sys, std::uint64_t aid) {
  std::vector<bytes> corpus;
  auto hs = client_handshake();
  auto with_hs = [&](const bytes& rest) {
    auto out = hs;
    append(out, rest);
    corpus.push_back(std::move(out));
  };
  corpus.push_back(hs);
  basp_header select_hs;
  select_hs.operation = 0x01;
  select_hs.flags = 0x02;
  with_hs(sized_frame(select_hs, node_id(4242)));
  auto info = direct(spawn_serv);
  info.flags = 0x01;
  with_hs(sized_frame(
    info, direct_payload(sys, caf::make_message(caf::sys_atom::value,
                                                caf::get_atom::value,
                                                std::string{"info"}))));
  basp_header monitor;
  monitor.operation = 0x04;
  monitor.dest_actor = aid;
  auto ids = node_id(4242);
  append(ids, node_id(1, 0xCD));
  with_hs(sized_frame(monitor, ids));
  basp_header down;
  down.operation = 0x05;
  down.source_actor = 9;
  auto reason = ids;
  reason.push_back(1); // error code
  put_be(reason, static_cast<std::uint64_t>(caf::atom("exit")), 8);
  append(reason, bytes{0x00, 0x00, 0x03, '@', '<', '>'});
  with_hs(sized_frame(down, reason));
  basp_header beat;
  beat.operation = 0x06;
  with_hs(frame(beat));
  pb::RegisterRequest reg;
  reg.set_worker_id("fuzz");
  reg.add_queues("cpp-invoices");
  auto* src = reg.add_workflows();
  src->set_name("w.yaml");
  src->set_format("yaml");
  src->set_text("name: w\nsteps: []\n");
  with_hs(
    sized_frame(direct(aid), direct_payload(sys, caf::make_message(reg))));
  pb::HeartbeatRequest hb;
  hb.set_worker_id("fuzz");
  hb.set_attempt_token("t-1");
  with_hs(
    sized_frame(direct(aid, 2), direct_payload(sys, caf::make_message(hb))));
  pb::CompleteTaskRequest done;
  done.set_worker_id("fuzz");
  done.set_attempt_token("t-1");
  done.set_result_json(R"({"total": 1})");
  with_hs(
    sized_frame(direct(aid, 3), direct_payload(sys, caf::make_message(done))));
  pb::DrainRequest drain;
  drain.set_worker_id("fuzz");
  with_hs(
    sized_frame(direct(aid, 4), direct_payload(sys, caf::make_message(drain))));
  // Hostile: a byte buffer CAF resizes to 4 GiB before reading it, a nested
  // message, a type the node has but a worker never sends.
  with_hs(sized_frame(direct(aid),
                      message_payload("@<>+@charbuf",
                                      bytes{0xFF, 0xFF, 0xFF, 0xFF, 0x0F})));
  with_hs(sized_frame(direct(aid),
                      message_payload("@<>+@message",
                                      bytes{0x00, 0x00, 0x03, '@', '<', '>'})));
  with_hs(
    sized_frame(direct(aid), message_payload("@<>+@error", bytes(9, 0x01))));
  return corpus;
}

/// Lengths and values at the edges of the checks.
const std::vector<std::uint32_t> interesting
  = {0,       1,       31,         32,         33,         63,        64,
     65,      4095,    4096,       4097,       65535,      65536,     4194303,
     4194304, 4194305, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF};

class mutator {
 public:
  mutator(std::uint64_t seed, std::vector<bytes> corpus, std::uint64_t aid)
    : rng_(seed), corpus_(std::move(corpus)), aid_(aid) {
    // nop
  }

  bytes next() {
    switch (pick(8)) {
      case 0: return random_bytes(pick(300));
      case 1: return structured_header(pick(2) == 0);
      case 2: {
        auto out = client_handshake();
        append(out, random_bytes(32 + pick(200)));
        return out;
      }
      case 3:
      case 4: return mutate_values(corpus_[pick(corpus_.size())]);
      default: return mutate(corpus_[pick(corpus_.size())]);
    }
  }

 private:
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>{0, n - 1}(rng_);
  }

  bytes random_bytes(std::size_t n) {
    bytes out(n);
    for (auto& b : out)
      b = static_cast<std::uint8_t>(pick(256));
    return out;
  }

  std::uint64_t id() {
    static const std::uint64_t ids[] = {0, 1, 7, 0xFFFFFFFFFFFFFFFFull,
                                        spawn_serv};
    if (pick(4) == 0) return aid_;
    return ids[pick(std::size(ids))];
  }

  /// A header of any operation with edge values, optionally after a valid
  /// handshake, with a short random payload.
  bytes structured_header(bool after_handshake) {
    basp_header hdr;
    hdr.operation = static_cast<std::uint8_t>(pick(4) == 0 ? pick(256)
                                                           : pick(8));
    static const std::uint8_t flag_values[] = {0, 1, 2, 3, 0x80, 0xFF};
    hdr.flags = flag_values[pick(std::size(flag_values))];
    if (pick(8) == 0) hdr.padding1 = static_cast<std::uint8_t>(pick(256));
    hdr.payload_len = interesting[pick(interesting.size())];
    hdr.operation_data = pick(2) == 0 ? 0 : id();
    hdr.source_actor = id();
    hdr.dest_actor = id();
    auto out = after_handshake ? client_handshake() : bytes{};
    append(out, frame(hdr, random_bytes(
                             std::min<std::size_t>(hdr.payload_len, 600))));
    return out;
  }

  /// Mutates the values of a corpus stream's second frame and fixes its
  /// payload_len, so that the frame keeps a shape the guard passes and
  /// libcaf_io's deserializers get garbage of allowed types.
  bytes mutate_values(const bytes& x) {
    constexpr std::size_t hs = 64;
    if (x.size() <= hs + caf_guard_header) return mutate(x);
    auto hdr = cerebelum::caf_guard::decode_header(x.data() + hs);
    bytes payload(x.begin() + hs + caf_guard_header, x.end());
    // Keep the forwarding stack and the type name of a message intact.
    std::size_t keep = 0;
    if (hdr.operation == 0x02 && payload.size() > 4)
      keep = std::min(payload.size(), std::size_t{4} + payload[3]);
    auto rounds = 1 + pick(4);
    for (std::size_t r = 0; r < rounds; ++r) {
      auto at = keep + pick(payload.size() - keep + 1);
      switch (pick(5)) {
        case 0:
          if (at < payload.size())
            payload[at] ^= static_cast<std::uint8_t>(1u << pick(8));
          break;
        case 1: {
          // A length (string, vector) of up to 4 GiB as a varbyte.
          static const bytes huge{0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
          payload.insert(payload.begin() + static_cast<std::ptrdiff_t>(at),
                         huge.begin(), huge.end());
          break;
        }
        case 2: {
          auto more = random_bytes(1 + pick(32));
          payload.insert(payload.begin() + static_cast<std::ptrdiff_t>(at),
                         more.begin(), more.end());
          break;
        }
        case 3: payload.resize(std::max(keep, at)); break;
        default:
          if (at < payload.size())
            payload[at] = static_cast<std::uint8_t>(pick(256));
      }
    }
    bytes out(x.begin(), x.begin() + hs);
    append(out, payload.empty() ? frame(hdr) : sized_frame(hdr, payload));
    return out;
  }

  bytes mutate(bytes x) {
    auto rounds = 1 + pick(6);
    for (std::size_t r = 0; r < rounds && !x.empty(); ++r) {
      auto at = pick(x.size());
      switch (pick(7)) {
        case 0: x[at] ^= static_cast<std::uint8_t>(1u << pick(8)); break;
        case 1: x[at] = static_cast<std::uint8_t>(pick(256)); break;
        case 2: {
          // An interesting big-endian u32 (a payload length or size).
          auto v = interesting[pick(interesting.size())];
          for (int i = 0; i < 4 && at + i < x.size(); ++i)
            x[at + i] = static_cast<std::uint8_t>(v >> (8 * (3 - i)));
          break;
        }
        case 3: x.resize(at); break;
        case 4: {
          auto more = random_bytes(1 + pick(16));
          x.insert(x.begin() + static_cast<std::ptrdiff_t>(at), more.begin(),
                   more.end());
          break;
        }
        case 5: {
          auto len = std::min(x.size() - at, 1 + pick(64));
          x.erase(x.begin() + static_cast<std::ptrdiff_t>(at),
                  x.begin() + static_cast<std::ptrdiff_t>(at + len));
          break;
        }
        default: {
          // Append another corpus stream minus its handshake.
          auto& other = corpus_[pick(corpus_.size())];
          x.insert(x.end(), other.begin() + 64, other.end());
          break;
        }
      }
    }
    return x;
  }

  std::mt19937_64 rng_;
  std::vector<bytes> corpus_;
  std::uint64_t aid_;
};

std::string hex(const bytes& x) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : x) {
    out += digits[b >> 4];
    out += digits[b & 0xF];
  }
  return out;
}

std::uint64_t fuzz_seed() {
  if (auto* env = std::getenv("CEREBELUM_FUZZ_SEED"))
    return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

} // namespace

// Bound: the node's RSS grows by less than 128 MiB over the whole run.
TEST_CASE("thousands of mutated BASP streams neither crash the node nor "
          "grow its memory, and a real worker still works") {
  constexpr int iterations = 10000;
  constexpr auto time_budget = 30s;
  auto seed = fuzz_seed();
  std::cout << "caf guard fuzz: seed " << seed
            << " (CEREBELUM_FUZZ_SEED=" << seed << " replays it)" << std::endl;
  caf::actor_system_config cfg;
  cerebelum::wire::add_wire_types(cfg);
  caf::actor_system sys{cfg};
  caf_node node;
  auto pid = node.process().pid();
  std::uint64_t aid = 0;
  {
    raw_peer probe{node.caf_port};
    REQUIRE(probe.ok());
    auto found = probe.read_server_handshake(10s);
    REQUIRE(found);
    aid = *found;
  }
  auto before = proc_status_kib(pid, "VmRSS");
  mutator gen{seed, make_corpus(sys, aid), aid};
  cerebelum::caf_guard::check_limits limits;
  limits.allowed_types = cerebelum::caf_guard::worker_type_names();
  std::uint64_t sent_bytes = 0, refused = 0, passed = 0, frames = 0;
  auto started = std::chrono::steady_clock::now();
  int done = 0;
  for (; done < iterations; ++done) {
    if (std::chrono::steady_clock::now() - started > time_budget) break;
    auto stream = gen.next();
    // What the guard should do with it: the checker, in-process.
    cerebelum::caf_guard::basp_checker oracle{limits};
    oracle.allow_destination(aid);
    auto verdict = oracle.feed(stream.data(), stream.size());
    frames += oracle.frames();
    if (verdict.error)
      ++refused;
    else
      ++passed;
    raw_peer peer{node.caf_port};
    INFO("seed " << seed << ", iteration " << done);
    REQUIRE(peer.ok()); // refused: the node is gone
    node.process().drain();
    if (done % 2 == 0) REQUIRE(peer.read_server_handshake(10s));
    peer.send(stream); // may fail: the guard closed it
    sent_bytes += stream.size();
    peer.shutdown_write();
    if (!peer.wait_closed(10s)) {
      node.process().wait_for_line("\x01 never printed", 100ms);
      auto& out = node.process().output();
      FAIL("the connection was not closed; stream "
           << hex(stream) << "\nnode output (end):\n"
           << out.substr(out.size() > 6000 ? out.size() - 6000 : 0));
    }
    if (done % 200 == 0) require_node_serves(node);
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  auto after = proc_status_kib(pid, "VmRSS");
  node.process().drain();
  std::size_t printed = 0;
  const auto& out = node.process().output();
  for (auto at = out.find("unexpected message"); at != std::string::npos;
       at = out.find("unexpected message", at + 1))
    ++printed;
  std::cout << "caf guard fuzz: seed " << seed << ", " << done << " streams ("
            << sent_bytes << " bytes, " << frames
            << " frames accepted by the checks), " << refused
            << " refused by the checks, " << passed
            << " passed entirely to CAF, in " << elapsed.count()
            << " ms; node RSS " << before << " -> " << after
            << " KiB; CAF printed " << printed << " unexpected messages"
            << std::endl;
  CHECK(done >= 2000);
  CHECK(after > 0); // -1: the node is gone
  CHECK(after - before < 128 * 1024);
  require_node_serves(node);
  require_worker_completes(node, "after-fuzz");
}
