// Writes the seed corpus of basp_fuzz: client -> server streams as a CAF
// 0.17.6 worker writes them (caf::binary_serializer, the wire's message
// types), each after the one byte basp_fuzz reads as its split seed.
// Built only with -DCEREBELUM_FUZZ_SEED_TOOLS=ON; run once:
//   basp_seeds tests/fuzz/corpus/basp
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "src/bridges/caf/basp_check.hpp"
#include "wire/wire.hpp"

using namespace cerebelum;
using bytes = std::vector<std::uint8_t>;
using caf_guard::basp_header;

namespace {

/// basp_fuzz's gateway (published actor) and one-answer actor ids.
constexpr std::uint64_t gateway = 17;
constexpr std::uint64_t asker = 23;

void put_be(bytes& out, std::uint64_t x, int size) {
  for (int i = size - 1; i >= 0; --i)
    out.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}

void append(bytes& x, const bytes& more) {
  x.insert(x.end(), more.begin(), more.end());
}

bytes frame(basp_header hdr, const bytes& payload = {}) {
  hdr.payload_len = static_cast<std::uint32_t>(payload.size());
  auto out = caf_guard::encode_header(hdr);
  append(out, payload);
  return out;
}

bytes node_id(std::uint32_t pid, std::uint8_t host_fill = 0xAB) {
  bytes out;
  put_be(out, static_cast<std::uint64_t>(caf::atom("default")), 8);
  put_be(out, pid, 4);
  out.insert(out.end(), 20, host_fill);
  return out;
}

bytes handshake() {
  basp_header hdr;
  hdr.operation = 0x01;
  return frame(hdr, node_id(4242));
}

basp_header direct(std::uint64_t dest, std::uint64_t mid = 1) {
  basp_header hdr;
  hdr.operation = 0x02;
  hdr.operation_data = mid;
  hdr.source_actor = 7;
  hdr.dest_actor = dest;
  return hdr;
}

/// A direct_message payload: an empty forwarding stack, then `msg`.
bytes direct_payload(caf::actor_system& sys, const caf::message& msg) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  std::vector<caf::strong_actor_ptr> stages;
  if (auto err = sink(stages, msg)) std::abort();
  return bytes(buf.begin(), buf.end());
}

/// Writes `stream` after checking that the guard passes all of it, as it
/// passes a real worker's.
void write(const std::string& dir, const std::string& name, std::uint8_t split,
           const bytes& stream) {
  caf_guard::check_limits limits;
  limits.allowed_types = caf_guard::worker_type_names();
  caf_guard::basp_checker checker{limits};
  checker.allow_destination(gateway);
  checker.allow_one_message_to(asker);
  auto v = checker.feed(stream.data(), stream.size());
  if (v.error || v.forward != stream.size()) {
    std::fprintf(stderr, "%s: refused: %s\n", name.c_str(),
                 v.error ? v.error->c_str() : "not all forwarded");
    std::exit(1);
  }
  std::ofstream out{dir + "/" + name, std::ios::binary};
  out.put(static_cast<char>(split));
  out.write(reinterpret_cast<const char*>(stream.data()),
            static_cast<std::streamsize>(stream.size()));
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: basp_seeds DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  caf::actor_system_config cfg;
  wire::add_wire_types(cfg);
  caf::actor_system sys{cfg};

  auto hs = handshake();
  write(dir, "handshake", 0, hs);

  auto stream = hs;
  basp_header select;
  select.operation = 0x01;
  select.flags = 0x02;
  append(stream, frame(select, node_id(4242)));
  auto info = direct(static_cast<std::uint64_t>(caf::atom("SpawnServ")));
  info.flags = 0x01;
  append(stream, frame(info, direct_payload(
                               sys, caf::make_message(caf::sys_atom::value,
                                                      caf::get_atom::value,
                                                      std::string{"info"}))));
  write(dir, "connect", 1, stream);

  worker::RegisterRequest reg;
  reg.set_worker_id("w-1");
  reg.add_queues("invoices");
  auto* src = reg.add_workflows();
  src->set_name("w.yaml");
  src->set_format("yaml");
  src->set_text("name: w\nsteps:\n  - a: {task: t}\n");
  stream = hs;
  append(stream,
         frame(direct(gateway), direct_payload(sys, caf::make_message(reg))));
  worker::HeartbeatRequest hb;
  hb.set_worker_id("w-1");
  hb.set_attempt_token("t-1");
  append(stream,
         frame(direct(gateway, 2), direct_payload(sys, caf::make_message(hb))));
  worker::CompleteTaskRequest done;
  done.set_worker_id("w-1");
  done.set_attempt_token("t-1");
  done.set_result_json(R"({"total": 1})");
  append(stream, frame(direct(gateway, 3),
                       direct_payload(sys, caf::make_message(done))));
  write(dir, "register_heartbeat_complete", 2, stream);

  stream = hs;
  worker::DrainRequest drain;
  drain.set_worker_id("w-1");
  append(stream, frame(direct(asker, 4),
                       direct_payload(sys, caf::make_message(drain))));
  worker::UnregisterRequest bye;
  bye.set_worker_id("w-1");
  append(stream, frame(direct(gateway, 5),
                       direct_payload(sys, caf::make_message(bye))));
  write(dir, "drain_unregister", 3, stream);

  stream = hs;
  basp_header monitor;
  monitor.operation = 0x04;
  monitor.dest_actor = gateway;
  auto ids = node_id(4242);
  append(ids, node_id(1, 0xCD));
  append(stream, frame(monitor, ids));
  basp_header down;
  down.operation = 0x05;
  down.source_actor = 9;
  auto reason = ids;
  reason.push_back(1); // error code
  put_be(reason, static_cast<std::uint64_t>(caf::atom("exit")), 8);
  append(reason, bytes{0x00, 0x00, 0x03, '@', '<', '>'});
  append(stream, frame(down, reason));
  basp_header beat;
  beat.operation = 0x06;
  append(stream, frame(beat));
  write(dir, "monitor_down_heartbeat", 4, stream);

  // A payload longer than the inspected prefix: it streams through.
  worker::CompleteTaskRequest big;
  big.set_worker_id("w-1");
  big.set_attempt_token("t-2");
  big.set_result_json("\"" + std::string(6000, 'x') + "\"");
  stream = hs;
  append(stream, frame(direct(gateway, 6),
                       direct_payload(sys, caf::make_message(big))));
  write(dir, "large_payload", 5, stream);
  return 0;
}
