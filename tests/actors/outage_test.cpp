// A store that goes away and comes back (eventstore::faulty_store's outage:
// every call fails `unavailable`, retryable, as PostgreSQL stopped does):
// the engine waits it out with backoff instead of counting crashes, answers
// starts and decisions "unavailable" meanwhile, reports it in its health,
// and continues by itself when the store is back. (The same against a real
// PostgreSQL server stopped and started: tests/node/store_outage_test.cpp.)

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "actors/errc.hpp"
#include "eventstore/faulty_store.hpp"
#include "tests/actors/engine_fixture.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
namespace es = cerebelum::eventstore;

namespace {

/// An engine whose store can be taken away (`outage`).
struct outage_fixture {
  engine_fixture f;
  std::shared_ptr<es::faulty_store> faulty;

  outage_fixture() {
    f.config().wrap_store = [this](std::shared_ptr<es::event_store> inner) {
      faulty = std::make_shared<es::faulty_store>(std::move(inner));
      return faulty;
    };
    f.start();
  }

  health_view health() {
    return f.api().health();
  }
};

} // namespace

TEST_CASE("executions whose timers come due in a store outage wait it out "
          "and complete, with bounded retries") {
  outage_fixture o;
  constexpr int n = 20;
  for (int i = 0; i < n; ++i)
    o.f.start("sleeper", 300, "nap-" + std::to_string(i));
  o.faulty->set_outage(true);
  // Every timer comes due during the outage: the executions wake, cannot
  // load, and wait (backoff up to 5 s), as does the scheduler's paging.
  std::this_thread::sleep_for(std::chrono::seconds{3});
  auto during = o.health();
  CHECK_FALSE(during.store_available);
  CHECK(during.outages == 1);
  CHECK(during.waiting >= 1);
  auto refused = o.faulty->refused();
  // 20 executions and the scheduler, backing off from 50 ms: a few hundred
  // calls at most in 3 s (a hot loop makes tens of thousands).
  CHECK(refused < 800);
  o.faulty->set_outage(false);
  for (int i = 0; i < n; ++i) {
    auto done = o.f.api().wait("nap-" + std::to_string(i), wait_time);
    REQUIRE(done);
    CHECK(done->status == status::completed);
    CHECK(done->result == json{{"n", 301}});
  }
  auto after = o.health();
  CHECK(after.store_available);
  CHECK(after.waiting == 0);
  CHECK(after.outages == 1);
}

TEST_CASE("a start in a store outage is answered unavailable at once, and "
          "the same start succeeds once the store is back") {
  outage_fixture o;
  o.faulty->set_outage(true);
  start_request req;
  req.workflow = "timeline";
  req.input = json{{"i", 1}};
  req.execution_id = "during-outage";
  req.started_by = "test";
  auto t0 = std::chrono::steady_clock::now();
  auto res = o.f.api().start(req);
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(res);
  CHECK(api_error_code(res.error()) == errc::unavailable);
  CHECK(api_error_message(res.error()).find("store is unavailable")
        != std::string::npos);
  CHECK(took < std::chrono::seconds{2});
  o.faulty->set_outage(false);
  auto again = o.f.api().start(req);
  REQUIRE(again);
  auto done = o.f.api().wait("during-outage", wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
}

TEST_CASE("an approval in a store outage is answered unavailable; the "
          "execution takes it once the store is back") {
  outage_fixture o;
  auto v = o.f.start("gated", 4, "gate");
  REQUIRE(o.f.wait_status("gate", status::awaiting_approval));
  o.faulty->set_outage(true);
  auto res = o.f.api().approve("gate", "alice", json::object());
  REQUIRE_FALSE(res);
  CHECK(api_error_code(res.error()) == errc::unavailable);
  o.faulty->set_outage(false);
  // The store's health comes back with the next call that succeeds.
  caf::expected<execution_view> ok = o.f.api().approve("gate", "alice",
                                                       json::object());
  for (int i = 0; i < 100 && !ok; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    ok = o.f.api().approve("gate", "alice", json::object());
  }
  REQUIRE(ok);
  auto done = o.f.api().wait("gate", wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
}
