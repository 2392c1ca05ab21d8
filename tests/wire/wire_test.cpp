// The messages of proto/worker.proto as CAF message types (wire/wire.hpp):
// each crosses CAF's binary serialization unchanged; oversized and garbage
// bytes fail the deserialization with `malformed_message`, never a crash.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/message.hpp>
#include <google/protobuf/text_format.h>

#include <string>
#include <vector>

#include "wire/wire.hpp"

namespace pb = cerebelum::worker;
namespace wire = cerebelum::wire;

namespace {

/// A message from protobuf's text format (the test fails on a typo).
template <class M>
M from_text(const std::string& text) {
  M m;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &m));
  return m;
}

caf::actor_system_config& with_wire_types(caf::actor_system_config& cfg) {
  wire::add_wire_types(cfg);
  return cfg;
}

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{with_wire_types(cfg)};

  /// `x` as a CAF message through binary serialization and back.
  template <class T>
  T round_trip(const T& x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    auto msg = caf::make_message(x);
    REQUIRE_FALSE(sink(msg));
    caf::binary_deserializer source{sys, buf};
    caf::message out;
    auto err = source(out);
    INFO(wire::render_error(sys, err));
    REQUIRE_FALSE(err);
    REQUIRE(out.match_elements<T>());
    return out.get_as<T>(0);
  }

  /// Deserializes a `T` from `bytes` as CAF writes one string.
  template <class T>
  caf::error load_from(const std::string& bytes) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    auto copy = bytes;
    REQUIRE_FALSE(sink(copy));
    caf::binary_deserializer source{sys, buf};
    T x;
    return source(x);
  }
};

template <class T>
bool same(const T& a, const T& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

} // namespace

TEST_CASE_METHOD(fixture, "every message of the CAF port crosses CAF "
                          "serialization unchanged") {
  pb::RegisterRequest reg;
  reg.set_worker_id("w-1");
  reg.add_queues("invoices");
  reg.add_queues("refunds");
  reg.set_max_in_flight(4);
  auto* src = reg.add_workflows();
  src->set_name("invoice.yaml");
  src->set_format("yaml");
  src->set_text("name: invoice\nsteps: []\n");
  CHECK(same(round_trip(reg), reg));
  pb::RegisterResponse registered;
  registered.add_workflows("invoice");
  registered.set_lease_timeout_ms(30000);
  CHECK(same(round_trip(registered), registered));
  pb::Task task;
  task.set_task_id("t-1");
  task.set_attempt_token("a-1");
  task.set_execution_id("e-1");
  task.set_workflow("invoice");
  task.set_step("price");
  task.set_task_type("invoice.price");
  task.set_queue("invoices");
  task.set_attempt(2);
  task.set_input_json(R"({"items": []})");
  task.set_idempotency_key("e-1/price");
  task.set_lease_expires_at_ms(1234567890123);
  task.set_heartbeat_timeout_ms(10000);
  task.set_start_to_close_timeout_ms(60000);
  task.set_resume_json(R"({"sleep#1": true})");
  CHECK(same(round_trip(task), task));
  auto hb = from_text<pb::HeartbeatRequest>(
    R"(worker_id: "w-1" attempt_token: "a-1" details_json: "{\"done\": 3}")");
  CHECK(same(round_trip(hb), hb));
  auto hb_ok = from_text<pb::HeartbeatResponse>(
    "lease_expires_at_ms: 99 cancel_requested: true");
  CHECK(same(round_trip(hb_ok), hb_ok));
  auto success = from_text<pb::CompleteTaskRequest>(
    R"(worker_id: "w-1" attempt_token: "a-1"
       result_json: "{\"total\": 1560}")");
  CHECK(same(round_trip(success), success));
  auto failure = from_text<pb::CompleteTaskRequest>(
    R"(worker_id: "w-1" attempt_token: "a-1"
       error { kind: "card_declined" message: "declined"
               details_json: "{\"code\": 51}" retryable: false })");
  auto failure_back = round_trip(failure);
  CHECK(same(failure_back, failure));
  CHECK(failure_back.outcome_case() == pb::CompleteTaskRequest::kError);
  auto suspend = from_text<pb::CompleteTaskRequest>(
    R"(worker_id: "w-1" attempt_token: "a-1"
       suspend { wait_key: "approval#1" approval: true
                 approval_data_json: "{\"amount\": 5}"
                 approval_timeout_ms: 3600000 })");
  CHECK(suspend.outcome_case() == pb::CompleteTaskRequest::kSuspend);
  CHECK(same(round_trip(suspend), suspend));
  auto done = from_text<pb::CompleteTaskResponse>("recorded: true");
  CHECK(same(round_trip(done), done));
  auto drain = from_text<pb::DrainRequest>(R"(worker_id: "w-1")");
  CHECK(same(round_trip(drain), drain));
  auto drained = from_text<pb::DrainResponse>("leased: 2");
  CHECK(same(round_trip(drained), drained));
  auto bye = from_text<pb::UnregisterRequest>(R"(worker_id: "w-1")");
  CHECK(same(round_trip(bye), bye));
  auto gone = from_text<pb::UnregisterResponse>("requeued: 1");
  CHECK(same(round_trip(gone), gone));
}

TEST_CASE_METHOD(fixture, "a message with several wire values and an empty "
                          "one round-trips") {
  pb::Task empty;
  pb::DrainResponse drained;
  drained.set_leased(7);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(caf::make_message(empty, drained)));
  caf::binary_deserializer source{sys, buf};
  caf::message out;
  REQUIRE_FALSE(source(out));
  REQUIRE(out.match_elements<pb::Task, pb::DrainResponse>());
  CHECK(same(out.get_as<pb::Task>(0), empty));
  CHECK(out.get_as<pb::DrainResponse>(1).leased() == 7);
}

TEST_CASE_METHOD(fixture, "bytes that are not a protobuf message fail the "
                          "deserialization with malformed_message") {
  auto err = load_from<pb::Task>(std::string(64, '\xFF'));
  INFO(wire::render_error(sys, err));
  REQUIRE(err);
  CHECK(wire::error_code(err) == wire::errc::malformed_message);
  CHECK(wire::render_error(sys, err)
        == "malformed_message: 64 bytes that are not a cerebelum.worker.Task");
}

TEST_CASE_METHOD(fixture, "bytes beyond the size limit are refused before "
                          "they are parsed") {
  auto err = load_from<pb::CompleteTaskRequest>(
    std::string(wire::max_message_bytes + 1, '\x0A'));
  INFO(wire::render_error(sys, err));
  REQUIRE(err);
  CHECK(wire::error_code(err) == wire::errc::malformed_message);
  CHECK(wire::render_error(sys, err).find("limit") != std::string::npos);
}

TEST_CASE_METHOD(fixture, "a message over the size limit is not "
                          "serialized") {
  pb::CompleteTaskRequest big;
  big.set_worker_id("w-1");
  big.set_result_json(std::string(wire::max_message_bytes, 'x'));
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto err = sink(big);
  INFO(wire::render_error(sys, err));
  REQUIRE(err);
  CHECK(wire::error_code(err) == wire::errc::malformed_message);
  CHECK(buf.empty());
}

// CAF 0.17.6 reports a failed element of a message as an empty message or
// an error, depending on the path: either way no Task comes out of it.
TEST_CASE_METHOD(fixture, "a truncated or corrupted CAF message of a wire "
                          "type yields no message and no crash") {
  pb::Task task;
  task.set_task_id("t-1");
  task.set_input_json(R"({"items": [1, 2, 3]})");
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(caf::make_message(task)));
  for (std::size_t cut = 0; cut < buf.size(); ++cut) {
    std::vector<char> part{buf.begin(), buf.begin() + cut};
    caf::binary_deserializer source{sys, part};
    caf::message out;
    auto err = source(out);
    CHECK((err || !out.match_elements<pb::Task>()));
  }
  // The protobuf bytes' first field tag made invalid.
  auto corrupt = buf;
  auto text = std::string{corrupt.begin(), corrupt.end()};
  auto at = text.find("t-1");
  REQUIRE(at != std::string::npos);
  corrupt[at - 2] = '\xFF';
  caf::binary_deserializer source{sys, corrupt};
  caf::message out;
  auto err = out.load(source);
  INFO(wire::render_error(sys, err));
  CHECK(wire::error_code(err) == wire::errc::malformed_message);
  CHECK_FALSE(out.match_elements<pb::Task>());
}

TEST_CASE_METHOD(fixture, "a wire message prints as protobuf text") {
  pb::Task task;
  task.set_task_id("t-1");
  task.set_attempt(2);
  auto text = caf::deep_to_string(caf::make_message(task));
  INFO(text);
  CHECK(text.find("cerebelum.worker.Task") != std::string::npos);
  CHECK(text.find("task_id: ") != std::string::npos);
  CHECK(text.find("t-1") != std::string::npos);
  CHECK(text.find("attempt: 2") != std::string::npos);
}

TEST_CASE("the wire's type names are the messages of the CAF port") {
  auto names = wire::type_names();
  for (const char* name :
       {"cerebelum::worker::RegisterRequest",
        "cerebelum::worker::RegisterResponse", "cerebelum::worker::Task",
        "cerebelum::worker::HeartbeatRequest",
        "cerebelum::worker::HeartbeatResponse",
        "cerebelum::worker::CompleteTaskRequest",
        "cerebelum::worker::CompleteTaskResponse",
        "cerebelum::worker::DrainRequest", "cerebelum::worker::DrainResponse",
        "cerebelum::worker::UnregisterRequest",
        "cerebelum::worker::UnregisterResponse"}) {
    INFO(name);
    CHECK(names.count(name) == 1);
  }
  CHECK(names.size() == 11);
}
