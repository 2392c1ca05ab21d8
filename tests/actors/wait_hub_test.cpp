// The wait hub: one actor holds every wait of the node (`wait`,
// `wait_async`); waits of one execution share one subscription with the
// registry, deadlines share one timer, and the node's stop answers them.

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include <catch2/catch.hpp>

#include "actors/errc.hpp"
#include "tests/actors/engine_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using json = nlohmann::json;
using status = cerebelum::eventstore::execution_status;
using cerebelum::test::eventually;

namespace {

/// Collects the answers of `wait_async` calls.
struct answers {
  std::mutex mtx;
  std::vector<caf::expected<execution_view>> got;
  engine_api::wait_callback collect() {
    return [this](caf::expected<execution_view> r) {
      std::lock_guard<std::mutex> guard{mtx};
      got.push_back(std::move(r));
    };
  }
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mtx};
    return got.size();
  }
};

} // namespace

TEST_CASE("many waits of one execution share one subscription and all get "
          "its result") {
  engine_fixture f;
  f.start();
  // Sleeps 1.5 s, then t.inc.
  auto v = f.start("sleeper", 1500, "many-waits");
  answers async;
  for (int i = 0; i < 50; ++i)
    f.api().wait_async(v.execution_id, std::chrono::seconds{20},
                       async.collect());
  std::vector<std::future<caf::expected<execution_view>>> sync;
  for (int i = 0; i < 3; ++i)
    sync.push_back(std::async(std::launch::async, [&] {
      return f.api().wait(v.execution_id, wait_time);
    }));
  REQUIRE(eventually([&] {
    return f.waiters(v.execution_id) == 1;
  }));
  for (auto& s : sync) {
    auto r = s.get();
    REQUIRE(r);
    CHECK(r->status == status::completed);
    CHECK(r->result == json{{"n", 1501}});
  }
  REQUIRE(eventually([&] {
    return async.size() == 50;
  }));
  for (auto& r : async.got) {
    REQUIRE(r);
    CHECK(r->status == status::completed);
  }
  // Nothing is left subscribed.
  CHECK(f.waiters(v.execution_id) == 0);
}

TEST_CASE("wait_async gives up at its deadline and the other waits of the "
          "execution go on") {
  engine_fixture f;
  f.start();
  auto v = f.start("sleeper", 1500, "short-wait");
  answers early;
  answers late;
  f.api().wait_async(v.execution_id, std::chrono::milliseconds{200},
                     early.collect());
  f.api().wait_async(v.execution_id, std::chrono::seconds{20}, late.collect());
  REQUIRE(eventually([&] {
    return early.size() == 1;
  }));
  REQUIRE_FALSE(early.got[0]);
  CHECK(api_error_code(early.got[0].error()) == errc::deadline_exceeded);
  CHECK(api_error_message(early.got[0].error()).find("within 200 ms")
        != std::string::npos);
  CHECK(late.size() == 0);
  REQUIRE(eventually([&] {
    return late.size() == 1;
  }));
  REQUIRE(late.got[0]);
  CHECK(late.got[0]->status == status::completed);
}

TEST_CASE("a synchronous wait past its deadline is deadline_exceeded and "
          "leaves no subscription") {
  engine_fixture f;
  f.start();
  auto v = f.start("sleeper", 600'000, "long-sleep");
  auto r = f.api().wait(v.execution_id, std::chrono::milliseconds{100});
  REQUIRE_FALSE(r);
  CHECK(api_error_code(r.error()) == errc::deadline_exceeded);
  REQUIRE(eventually([&] {
    return f.waiters(v.execution_id) == 0;
  }));
}

TEST_CASE("waits are answered unavailable when the node stops") {
  engine_fixture f;
  f.start();
  auto v = f.start("sleeper", 600'000, "stopped-wait");
  answers async;
  f.api().wait_async(v.execution_id, std::chrono::seconds{60}, async.collect());
  REQUIRE(eventually([&] {
    return f.waiters(v.execution_id) == 1;
  }));
  f.stop();
  REQUIRE(eventually([&] {
    return async.size() == 1;
  }));
  REQUIRE_FALSE(async.got[0]);
  CHECK(api_error_code(async.got[0].error()) == errc::unavailable);
}
