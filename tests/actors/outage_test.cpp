// A store that goes away and comes back (eventstore::faulty_store's outage:
// every call fails `unavailable`, retryable, as PostgreSQL stopped does):
// the engine waits it out with backoff instead of counting crashes, answers
// starts and decisions "unavailable" meanwhile, reports it in its health,
// and continues by itself when the store is back. (The same against a real
// PostgreSQL server stopped and started: tests/node/store_outage_test.cpp.)

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "actors/errc.hpp"
#include "eventstore/faulty_store.hpp"
#include "eventstore/store_decorator.hpp"
#include "tests/actors/engine_fixture.hpp"
#include "tests/support/metrics_text.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
using cerebelum::test::metric_value;
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
  CHECK(metric_value(o.f.api().metrics_text(), "cerebelum_store_available")
        == 0);
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
  CHECK(metric_value(o.f.api().metrics_text(), "cerebelum_store_available")
        == 1);
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

TEST_CASE("an approval in a store outage is answered unavailable, and the "
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

namespace {

/// A store whose commits take `delay` while `slow` is set.
class slow_store final : public es::store_decorator {
 public:
  using es::store_decorator::store_decorator;
  std::atomic<bool> slow{false};

  std::vector<es::append_result>
  append_batch(std::span<const es::append_request> reqs) override {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds{100});
    return es::store_decorator::append_batch(reqs);
  }
};

} // namespace

TEST_CASE("starts are refused as overloaded while the store writer's queue "
          "backs up, and nothing of them is written") {
  engine_fixture f;
  std::shared_ptr<slow_store> store;
  f.config().wrap_store = [&](std::shared_ptr<es::event_store> inner) {
    store = std::make_shared<slow_store>(std::move(inner));
    return store;
  };
  f.config().writer.max_queued_requests = 8;
  f.config().writer.max_group_size = 2;
  f.config().admission_fill = 0.5;
  f.start();
  store->slow = true;
  constexpr int n = 40;
  std::vector<std::thread> clients;
  std::vector<int> outcome(n, 0); // 1 created, 2 overloaded, 3 other
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&, i] {
      start_request req;
      req.workflow = "sleeper";
      req.input = json{{"i", 10}};
      req.execution_id = "load-" + std::to_string(i);
      auto r = f.api().start(req);
      outcome[static_cast<std::size_t>(i)]
        = r                                               ? 1
          : api_error_code(r.error()) == errc::overloaded ? 2
                                                          : 3;
    });
  for (auto& c : clients)
    c.join();
  store->slow = false;
  auto count = [&](int v) {
    return std::count(outcome.begin(), outcome.end(), v);
  };
  INFO(count(1) << " created, " << count(2) << " overloaded, " << count(3)
                << " other");
  CHECK(count(1) >= 1);
  CHECK(count(2) >= 1);
  CHECK(count(3) == 0);
  for (int i = 0; i < n; ++i) {
    auto id = "load-" + std::to_string(i);
    if (outcome[static_cast<std::size_t>(i)] == 1) {
      auto done = f.api().wait(id, wait_time);
      REQUIRE(done);
      CHECK(done->status == status::completed);
    } else {
      // Refused before anything was written; the retry is an ordinary start.
      auto gone = f.api().describe(id);
      REQUIRE_FALSE(gone);
      CHECK(api_error_code(gone.error()) == errc::not_found);
    }
  }
}

TEST_CASE("starts are refused as overloaded while the store writer's oldest "
          "append has waited longer than the admission wait") {
  // One commit in progress that takes 1.5 s: the queue is nearly empty (the
  // length check lets everything in), but a new start would wait behind it.
  engine_fixture f;
  std::shared_ptr<es::faulty_store> faulty;
  f.config().wrap_store = [&faulty](std::shared_ptr<es::event_store> inner) {
    faulty = std::make_shared<es::faulty_store>(std::move(inner));
    return faulty;
  };
  f.config().admission_fill = 1.0;
  f.config().admission_wait = std::chrono::milliseconds{300};
  f.start();
  faulty->set_append_delay(std::chrono::milliseconds{1500});
  std::thread first{[&] {
    f.start("sleeper", 10, "slow-first");
  }};
  std::this_thread::sleep_for(std::chrono::milliseconds{700});
  start_request req;
  req.workflow = "sleeper";
  req.input = json{{"i", 10}};
  req.execution_id = "refused";
  auto r = f.api().start(req);
  first.join();
  faulty->set_append_delay(std::chrono::milliseconds{0});
  REQUIRE_FALSE(r);
  CHECK(api_error_code(r.error()) == errc::overloaded);
  CHECK_THAT(api_error_message(r.error()),
             Catch::Contains("oldest append has waited"));
  // Nothing of it was written; once the wait is gone a start is accepted.
  auto gone = f.api().describe("refused");
  REQUIRE_FALSE(gone);
  CHECK(api_error_code(gone.error()) == errc::not_found);
  // (The first execution's next append may still be in a slow commit.)
  auto later = f.api().start(req);
  for (int i = 0; i < 50 && !later; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    later = f.api().start(req);
  }
  REQUIRE(later);
  auto done = f.api().wait("refused", wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
}

TEST_CASE("a step's timeout counts from when it could run, not from a slow "
          "commit of its scheduling") {
  // Under load the store writer's queue delays each commit; a step is only
  // run once its scheduling is committed, but its timeout timer was due from
  // the decision on. Here every commit takes 1.5 s and the step's timeout is
  // 1 s: before the fix, the timer was already past due when the step could
  // start, and the step failed with `timeout` although it takes 200 ms.
  engine_fixture f;
  std::shared_ptr<es::faulty_store> faulty;
  f.config().wrap_store = [&faulty](std::shared_ptr<es::event_store> inner) {
    faulty = std::make_shared<es::faulty_store>(std::move(inner));
    return faulty;
  };
  f.config().functions->add("t.slow_inc", [](const json& in) {
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
    return json{{"n", in["n"].get<int>() + 1}};
  });
  std::ofstream{f.data_dir() / "workflows" / "timed.yaml"} << R"(name: timed
steps:
  - name: a
    call: t.slow_inc
    input: { n: "input.i" }
    timeout: 1s
  - name: b
    call: t.slow_inc
    input: { n: "steps.a.n" }
    timeout: 1s
output:
  n: "steps.b.n"
)";
  f.start();
  faulty->set_append_delay(std::chrono::milliseconds{1500});
  auto v = f.start("timed", 1, "timed-1");
  auto done = f.api().wait(v.execution_id, wait_time);
  faulty->set_append_delay(std::chrono::milliseconds{0});
  REQUIRE(done);
  INFO((done->error ? done->error->kind + ": " + done->error->message : ""));
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 3}});
}

TEST_CASE("a step's timeout does not count its wait for a free call pool "
          "thread") {
  // One pool thread, held 1.5 s by another execution's step: the timed
  // step waits in the pool's queue longer than its 1 s timeout, then runs in
  // 50 ms. Before the fix its timeout counted from the hand-off to the pool
  // and the step failed with `timeout` without having run.
  engine_fixture f;
  f.config().call_threads = 1;
  f.config().functions->add("t.busy", [](const json& in) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1500});
    return in;
  });
  f.config().functions->add("t.quick_inc", [](const json& in) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    return json{{"n", in["n"].get<int>() + 1}};
  });
  std::ofstream{f.data_dir() / "workflows" / "busy.yaml"} << R"(name: busy
steps:
  - name: hold
    call: t.busy
    input: { n: "input.i" }
)";
  std::ofstream{f.data_dir() / "workflows" / "queued.yaml"} << R"(name: queued
steps:
  - name: a
    call: t.quick_inc
    input: { n: "input.i" }
    timeout: 1s
output:
  n: "steps.a.n"
)";
  f.start();
  auto holder = f.start("busy", 1, "busy-1");
  // The holder's step is on the pool's only thread before the timed one
  // is queued behind it.
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  auto v = f.start("queued", 1, "queued-1");
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  INFO((done->error ? done->error->kind + ": " + done->error->message : ""));
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 2}});
  auto first = f.api().wait(holder.execution_id, wait_time);
  REQUIRE(first);
  CHECK(first->status == status::completed);
}
