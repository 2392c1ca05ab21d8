#include <catch2/catch.hpp>

#include <algorithm>

#include "eventstore/codec.hpp"

using namespace cerebelum::eventstore;
namespace events = cerebelum::events;

TEST_CASE("every core event type of events.proto is one the current store "
          "schema version defines") {
  // A core type an older node does not know would read as a damaged event
  // in its store: adding one raises current_schema_version (and
  // highest_core_event_type), so that older nodes refuse the store instead.
  const auto* payload = events::Event::descriptor()->FindOneofByName("payload");
  REQUIRE(payload != nullptr);
  int highest = 0;
  for (int i = 0; i < payload->field_count(); ++i) {
    auto number = payload->field(i)->number();
    if (!is_skippable_type(number)) highest = std::max(highest, number);
  }
  CHECK(highest == highest_core_event_type);
}

TEST_CASE("an event encodes to its field number and decodes back") {
  events::Event ev;
  ev.set_recorded_at_ms(42);
  auto* done = ev.mutable_step_completed();
  done->set_step("fetch");
  done->set_attempt(3);
  done->set_result_json(R"({"ok":true})");
  auto enc = encode(ev);
  REQUIRE(enc.ok());
  CHECK(enc->type == events::Event::kStepCompleted);
  CHECK(enc->recorded_at_ms == 42);
  auto dec = decode(stored_event{9, enc->type, enc->payload, 42});
  REQUIRE(dec.ok());
  REQUIRE(dec->has_value());
  CHECK((*dec)->seq() == 9);
  CHECK((*dec)->step_completed().step() == "fetch");
  CHECK((*dec)->step_completed().attempt() == 3);
  CHECK((*dec)->payload_case() == events::Event::kStepCompleted);
}

TEST_CASE("an event without a payload cannot be encoded") {
  auto enc = encode(events::Event{});
  REQUIRE_FALSE(enc.ok());
  CHECK(enc.err().code == errc::invalid_argument);
}

TEST_CASE("an unknown type in the skippable range decodes to nothing") {
  auto dec = decode(stored_event{0, 1999, "??", 0});
  REQUIRE(dec.ok());
  CHECK_FALSE(dec->has_value());
  CHECK(is_skippable_type(1000));
  CHECK_FALSE(is_skippable_type(999));
  CHECK_FALSE(is_skippable_type(2000));
}

TEST_CASE("an unknown core type is reported as a damaged event, not as the "
          "work of a newer node") {
  // A node that adds core types raises the schema version, which this node
  // would have refused at open: in an accepted store the code is damage.
  auto dec = decode(stored_event{5, 999, "", 0});
  REQUIRE_FALSE(dec.ok());
  CHECK(dec.err().code == errc::unknown_event_type);
  CHECK_THAT(dec.err().message, Catch::Contains("999"));
  CHECK_THAT(dec.err().message, Catch::Contains("damaged"));
  CHECK_THAT(dec.err().message, !Catch::Contains("newer"));
}

TEST_CASE("an unparsable payload is a corrupt event") {
  auto dec = decode(stored_event{1, events::Event::kExecutionStarted,
                                 std::string("\xff\xff\xff", 3), 0});
  REQUIRE_FALSE(dec.ok());
  CHECK(dec.err().code == errc::corrupt_event);
  CHECK_THAT(dec.err().message, Catch::Contains("damaged"));
}
