// The BASP frame checks of the CAF guard, in-process, on frames shaped as a
// real CAF 0.17.6 worker writes them (captured from examples/caf_worker).

#include <catch2/catch.hpp>

#include <caf/atom.hpp>

#include "src/bridges/caf/basp_check.hpp"
#include "tests/cafworkers/basp_peer.hpp"
#include "wire/wire.hpp"

using namespace cerebelum::test;
using namespace cerebelum::caf_guard;

namespace {

struct fixture {
  check_limits limits;
  fixture() {
    limits.allowed_types = worker_type_names();
  }

  /// The gateway's actor id, as the server handshake announces it.
  static constexpr std::uint64_t gateway = 17;

  /// Feeds `stream` at once and byte by byte; both must agree.
  basp_checker::verdict check(const bytes& stream) {
    basp_checker whole{limits};
    whole.allow_destination(gateway);
    auto result = whole.feed(stream.data(), stream.size());
    basp_checker trickle{limits};
    trickle.allow_destination(gateway);
    std::size_t forwarded = 0;
    std::optional<std::string> error;
    for (std::size_t end = 1; end <= stream.size() && !error; ++end) {
      auto v = trickle.feed(stream.data() + forwarded, end - forwarded);
      forwarded += v.forward;
      error = v.error;
    }
    CHECK(forwarded == result.forward);
    CHECK(error.has_value() == result.error.has_value());
    return result;
  }
};

/// (sys, get, "info"): what a worker's middleman asks "SpawnServ".
bytes info_query(const std::string& key = "info") {
  bytes values;
  for (auto atom : {caf::atom("sys"), caf::atom("get")})
    for (int i = 7; i >= 0; --i)
      values.push_back(
        static_cast<std::uint8_t>(static_cast<std::uint64_t>(atom) >> (8 * i)));
  values.push_back(static_cast<std::uint8_t>(key.size()));
  for (auto c : key)
    values.push_back(static_cast<std::uint8_t>(c));
  return message_payload("@<>+@atom+@atom+@str", values);
}

basp_header direct_to(std::uint64_t dest) {
  basp_header hdr;
  hdr.operation = 0x02;
  hdr.operation_data = 1;
  hdr.source_actor = 8;
  hdr.dest_actor = dest;
  return hdr;
}

} // namespace

TEST_CASE_METHOD(fixture, "a worker's handshakes, spawn server query and "
                          "protocol messages pass") {
  auto stream = client_handshake();
  basp_header select;
  select.operation = 0x01;
  select.flags = 0x02;
  append(stream, sized_frame(select, node_id(4242)));
  auto query = direct_to(static_cast<std::uint64_t>(caf::atom("SpawnServ")));
  query.flags = 0x01;
  append(stream, sized_frame(query, info_query()));
  append(stream,
         sized_frame(direct_to(17), message_payload("@<>+cerebelum::worker::"
                                                    "CompleteTaskRequest",
                                                    bytes(100, 0x02))));
  basp_header monitor;
  monitor.operation = 0x04;
  monitor.dest_actor = 17;
  auto ids = node_id(4242);
  append(ids, node_id(1));
  append(stream, sized_frame(monitor, ids));
  basp_header beat;
  beat.operation = 0x06;
  append(stream, frame(beat));
  auto v = check(stream);
  CHECK_FALSE(v.error);
  CHECK(v.forward == stream.size());
}

TEST_CASE_METHOD(fixture, "a payload longer than the inspected prefix is "
                          "forwarded as it streams in") {
  auto stream = client_handshake();
  append(stream, sized_frame(direct_to(17),
                             message_payload("@<>+@str", bytes(100000, 'x'))));
  basp_checker c{limits};
  c.allow_destination(gateway);
  // The header waits for the first 4096 payload bytes, then the rest flows.
  auto first = c.feed(stream.data(), 64 + 32 + 4095);
  CHECK(first.forward == 64);
  auto second = c.feed(stream.data() + 64, stream.size() - 64);
  CHECK_FALSE(second.error);
  CHECK(second.forward == stream.size() - 64);
}

TEST_CASE_METHOD(fixture, "frames that crash or bloat libcaf_io are "
                          "refused") {
  auto hs = client_handshake();
  auto after_hs = [&](const bytes& rest) {
    auto out = hs;
    append(out, rest);
    return out;
  };
  basp_header zero_hs;
  zero_hs.operation = 0x01;
  basp_header server_hs;
  server_hs.operation = 0x00;
  server_hs.operation_data = 1;
  basp_header huge = direct_to(17);
  huge.payload_len = 0xFFFFFFF0u;
  basp_header padded;
  padded.operation = 0x01;
  padded.padding2 = 1;
  basp_header routed = direct_to(17);
  routed.operation = 0x03;
  basp_header named = direct_to(17);
  named.flags = 0x01; // a named receiver other than SpawnServ
  auto spawn_serv
    = direct_to(static_cast<std::uint64_t>(caf::atom("SpawnServ")));
  spawn_serv.flags = 0x01;
  basp_header unknown;
  unknown.operation = 0x07;
  basp_header upstream = direct_to(17);
  upstream.operation_data = 0x2000000000000001;
  basp_header downstream = direct_to(17);
  downstream.operation_data = 0x3000000000000001;
  auto [name, stream] = GENERATE_COPY(table<std::string, bytes>({
    {"upstream message id",
     after_hs(sized_frame(upstream, message_payload("@<>+@str", {1, 'x'})))},
    {"downstream message id",
     after_hs(sized_frame(downstream, message_payload("@<>+@str", {1, 'x'})))},
    {"client_handshake of length 0", frame(zero_hs)},
    {"server_handshake from a client", frame(server_hs)},
    {"4 GiB payload", after_hs(frame(huge))},
    {"4 GiB handshake", frame(basp_header{1, 0, 0, 0, 0xFFFFFFF0u, 0, 0, 0})},
    {"direct message first",
     sized_frame(direct_to(17), message_payload("@<>"))},
    {"padding", sized_frame(padded, node_id(1))},
    {"routed message", after_hs(sized_frame(routed, message_payload("@<>")))},
    {"named receiver", after_hs(sized_frame(named, message_payload("@<>")))},
    {"message to an actor the node did not introduce",
     after_hs(
       sized_frame(direct_to(1), message_payload("@<>+@str", {0x01, 'x'})))},
    {"spawn server asked for another key",
     after_hs(sized_frame(spawn_serv, info_query("ConfigServ")))},
    {"unknown operation", after_hs(frame(unknown))},
    {"handshake with another node id", after_hs(client_handshake(/*pid=*/7))},
    {"handshake with an empty host",
     sized_frame(zero_hs, node_id(1, /*host_fill=*/0))},
    {"charbuf",
     after_hs(sized_frame(direct_to(17),
                          message_payload("@<>+@charbuf",
                                          {0xFF, 0xFF, 0xFF, 0xFF, 0x0F})))},
    {"nested message",
     after_hs(sized_frame(direct_to(17), message_payload("@<>+@message")))},
    {"node-internal type",
     after_hs(
       sized_frame(direct_to(17), message_payload("@<>+cerebelum::supervision::"
                                                  "child_info")))},
    {"forwarding stack",
     after_hs(sized_frame(direct_to(17), bytes{0x01, 0x00, 0x00, 0x00}))},
    {"varbyte longer than 5 bytes",
     after_hs(sized_frame(direct_to(17), bytes{0x00, 0x00, 0x00, 0x80, 0x80,
                                               0x80, 0x80, 0x80, 0x80, 0x01}))},
  }));
  INFO(name);
  auto v = check(stream);
  CHECK(v.error);
  CHECK(v.forward <= hs.size());
}

TEST_CASE_METHOD(fixture, "a header with a bad shape is refused before its "
                          "payload arrives") {
  basp_header huge;
  huge.operation = 0x01;
  huge.payload_len = 0xFFFFFFF0u;
  auto hdr = frame(huge);
  basp_checker c{limits};
  auto v = c.feed(hdr.data(), hdr.size());
  CHECK(v.error);
  CHECK(v.forward == 0);
}

namespace {

/// A server_handshake as libcaf_io writes it: node id, app ids, the
/// published actor's id, its interface.
bytes server_handshake(std::uint64_t published) {
  basp_header hdr;
  hdr.operation = 0x00;
  hdr.operation_data = 3; // BASP version
  auto payload = node_id(1, 0xCD);
  std::string app = "generic-caf-app";
  payload.push_back(1);
  payload.push_back(static_cast<std::uint8_t>(app.size()));
  for (auto c : app)
    payload.push_back(static_cast<std::uint8_t>(c));
  for (int i = 7; i >= 0; --i)
    payload.push_back(static_cast<std::uint8_t>(published >> (8 * i)));
  payload.push_back(0); // no interface
  return sized_frame(hdr, payload);
}

} // namespace

TEST_CASE_METHOD(fixture, "the worker may message the published gateway and "
                          "answer the node's spawn server query once") {
  basp_checker c{limits};
  basp_server_tracker node_side;
  // The node's bytes arrive in pieces.
  auto from_node = server_handshake(23);
  auto query = direct_to(static_cast<std::uint64_t>(caf::atom("SpawnServ")));
  query.flags = 0x01;
  query.source_actor = 31; // the node middleman's helper
  append(from_node, sized_frame(query, info_query()));
  for (std::size_t i = 0; i < from_node.size(); i += 7)
    REQUIRE_FALSE(node_side.feed(
      from_node.data() + i, std::min<std::size_t>(7, from_node.size() - i), c));
  auto to_gateway = sized_frame(direct_to(23),
                                message_payload("@<>+@str", {1, 'x'}));
  auto answer = sized_frame(direct_to(31),
                            message_payload("@<>+@str", {1, 'y'}));
  auto stream = client_handshake();
  append(stream, to_gateway);
  append(stream, to_gateway);
  append(stream, answer);
  auto v = c.feed(stream.data(), stream.size());
  CHECK_FALSE(v.error);
  CHECK(v.forward == stream.size());
  auto again = c.feed(answer.data(), answer.size());
  REQUIRE(again.error);
  CHECK(again.error->find("did not introduce") != std::string::npos);
}

TEST_CASE("a node stream that does not start with a server_handshake is "
          "refused") {
  check_limits limits;
  basp_checker c{limits};
  basp_server_tracker node_side;
  auto junk = frame(basp_header{2, 0, 0, 0, 0, 1, 1, 1});
  CHECK(node_side.feed(junk.data(), junk.size(), c));
}

TEST_CASE_METHOD(fixture, "the allow-list is the wire's message types and "
                          "CAF's connection setup, nothing else") {
  for (const auto& type : cerebelum::wire::type_names()) {
    INFO(type);
    auto stream = client_handshake();
    append(stream, sized_frame(direct_to(17),
                               message_payload("@<>+" + type, bytes{0x00})));
    CHECK_FALSE(check(stream).error);
  }
  // (ok, "info", actor, name): a worker's spawn server answering the node.
  auto setup = client_handshake();
  append(setup, sized_frame(direct_to(17),
                            message_payload("@<>+@atom+@str+@strong_actor_ptr"
                                            "+@str",
                                            bytes(8, 0x01))));
  CHECK_FALSE(check(setup).error);
  // Integers, string lists and durations cross no wire message.
  for (const char* type : {"@u32", "@i64", "@strvec", "@timespan", "bool"}) {
    INFO(type);
    auto stream = client_handshake();
    append(stream, sized_frame(direct_to(17),
                               message_payload(std::string{"@<>+@atom+"} + type,
                                               bytes(8, 0x01))));
    auto v = check(stream);
    REQUIRE(v.error);
    CHECK(v.error->find("not allowed") != std::string::npos);
  }
}
