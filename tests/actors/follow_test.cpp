// engine_api::follow: an execution's history, then each event as its commit
// lands, up to the terminal event (GET /v1/executions/{id}/events?follow=true
// is built on it; tests/node/api_process_test.cpp drives that end to end).

#include <catch2/catch.hpp>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "actors/errc.hpp"
#include "tests/actors/engine_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/metrics_text.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
using cerebelum::test::eventually;
using cerebelum::test::metric_value;
using namespace std::chrono_literals;

namespace {

/// What one follow handed over: each batch's events and how it ended.
struct collected {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<cerebelum::events::Event> events;
  int batches = 0;
  std::optional<caf::error> end;
  /// `events` answers this (false: stop following).
  bool keep_going = true;

  follow_sink sink() {
    follow_sink s;
    s.events = [this](std::vector<cerebelum::events::Event> batch) {
      std::lock_guard<std::mutex> guard{mtx};
      ++batches;
      for (auto& ev : batch)
        events.push_back(std::move(ev));
      cv.notify_all();
      return keep_going;
    };
    s.end = [this](caf::error err) {
      std::lock_guard<std::mutex> guard{mtx};
      end = std::move(err);
      cv.notify_all();
    };
    return s;
  }

  /// Waits (bounded) until `pred` holds under the lock.
  template <class Pred>
  bool wait(Pred pred) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, wait_time, pred);
  }

  bool has(cerebelum::events::Event::PayloadCase which) {
    for (auto& ev : events)
      if (ev.payload_case() == which) return true;
    return false;
  }
};

double followers(engine_fixture& f) {
  return metric_value(f.api().metrics_text(), "cerebelum_event_followers");
}

bool followers_drop_to_zero(engine_fixture& f) {
  return eventually([&] {
    return followers(f) == 0;
  });
}

using pc = cerebelum::events::Event::PayloadCase;

/// Starts `gated` and waits until it awaits its approval.
execution_view start_gated(engine_fixture& f) {
  f.start();
  auto v = f.start("gated", 5);
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  return v;
}

} // namespace

TEST_CASE("follow gives the history, then each event as it is committed, up "
          "to the terminal one") {
  engine_fixture f;
  auto v = start_gated(f);
  collected got;
  auto stop = f.api().follow(v.execution_id, 0, got.sink());
  REQUIRE(got.wait([&] {
    return got.has(pc::kApprovalRequested);
  }));
  CHECK(followers(f) == 1);
  CHECK_FALSE(got.end);
  REQUIRE(f.api().approve(v.execution_id, "alice", json::object()));
  REQUIRE(got.wait([&] {
    return got.end.has_value();
  }));
  CHECK_FALSE(*got.end);
  // Every event once, in order, the terminal one last, as the store has it.
  auto hist = f.api().history(v.execution_id, 0);
  REQUIRE(hist);
  REQUIRE(got.events.size() == hist->size());
  for (std::size_t i = 0; i < hist->size(); ++i)
    CHECK(got.events[i].SerializeAsString() == (*hist)[i].SerializeAsString());
  CHECK(got.events.back().has_execution_completed());
  CHECK(got.has(pc::kApprovalGranted));
  CHECK(got.batches >= 2);
  CHECK(followers_drop_to_zero(f));
  stop(); // after the end: nothing happens
}

TEST_CASE("follow from a sequence number skips what came before") {
  engine_fixture f;
  f.start();
  auto v = f.start("timeline", 1);
  REQUIRE(f.api().wait(v.execution_id, wait_time));
  auto hist = f.api().history(v.execution_id, 0);
  REQUIRE(hist);
  REQUIRE(hist->size() > 3);
  collected got;
  f.api().follow(v.execution_id, 3, got.sink());
  REQUIRE(got.wait([&] {
    return got.end.has_value();
  }));
  CHECK_FALSE(*got.end);
  REQUIRE(got.events.size() == hist->size() - 3);
  CHECK(got.events.front().seq() == 3);
  // Past the end of a terminal execution: an empty batch, then the end.
  collected past;
  f.api().follow(v.execution_id, 1000, past.sink());
  REQUIRE(past.wait([&] {
    return past.end.has_value();
  }));
  CHECK_FALSE(*past.end);
  CHECK(past.batches == 1);
  CHECK(past.events.empty());
}

TEST_CASE("a stopped follow, or one whose sink says stop, leaves the feed") {
  engine_fixture f;
  auto v = start_gated(f);
  collected a;
  auto stop = f.api().follow(v.execution_id, 0, a.sink());
  REQUIRE(a.wait([&] {
    return a.batches > 0;
  }));
  collected b;
  b.keep_going = false;
  f.api().follow(v.execution_id, 0, b.sink());
  REQUIRE(b.wait([&] {
    return b.batches > 0;
  }));
  stop();
  CHECK(followers_drop_to_zero(f));
  // Neither hears of the approval, nor gets an end.
  REQUIRE(f.api().approve(v.execution_id, "alice", json::object()));
  REQUIRE(f.api().wait(v.execution_id, wait_time));
  std::this_thread::sleep_for(100ms);
  std::lock_guard<std::mutex> ga{a.mtx};
  std::lock_guard<std::mutex> gb{b.mtx};
  CHECK_FALSE(a.has(pc::kApprovalGranted));
  CHECK_FALSE(a.end);
  CHECK(b.batches == 1);
  CHECK_FALSE(b.end);
}

TEST_CASE("following an unknown or malformed id ends with an error") {
  engine_fixture f;
  f.start();
  collected unknown;
  f.api().follow("no-such-id", 0, unknown.sink());
  REQUIRE(unknown.wait([&] {
    return unknown.end.has_value();
  }));
  CHECK(api_error_code(*unknown.end) == errc::not_found);
  CHECK(unknown.batches == 0);
  collected bad;
  f.api().follow(std::string(5000, 'x'), 0, bad.sink());
  REQUIRE(bad.wait([&] {
    return bad.end.has_value();
  }));
  CHECK(api_error_code(*bad.end) == errc::invalid_argument);
  CHECK(followers_drop_to_zero(f));
}

TEST_CASE("a node that stops ends its follows with unavailable") {
  engine_fixture f;
  auto v = start_gated(f);
  collected got;
  f.api().follow(v.execution_id, 0, got.sink());
  REQUIRE(got.wait([&] {
    return got.batches > 0;
  }));
  f.stop();
  REQUIRE(got.wait([&] {
    return got.end.has_value();
  }));
  CHECK(api_error_code(*got.end) == errc::unavailable);
}

TEST_CASE("a follow is subscribed with the registry while it lasts and "
          "leaves no subscription behind") {
  // Followers subscribe like waiters (no monitor of the registry): each
  // holds one subscription, and every way out gives it back.
  engine_fixture f;
  auto v = start_gated(f);
  collected a;
  auto stop = f.api().follow(v.execution_id, 0, a.sink());
  collected b;
  b.keep_going = false;
  f.api().follow(v.execution_id, 0, b.sink());
  REQUIRE(a.wait([&] {
    return a.batches > 0;
  }));
  REQUIRE(b.wait([&] {
    return b.batches > 0;
  }));
  auto subscriptions = [&](std::uint64_t n) {
    return eventually([&] {
      return f.waiters(v.execution_id) == n;
    });
  };
  // b's sink said stop: only a is left.
  CHECK(subscriptions(1));
  stop();
  CHECK(subscriptions(0));
}

TEST_CASE("a follow ends with unavailable when the registry is restarted") {
  engine_fixture f;
  auto v = start_gated(f);
  collected got;
  f.api().follow(v.execution_id, 0, got.sink());
  REQUIRE(got.wait([&] {
    return got.batches > 0;
  }));
  REQUIRE(eventually([&] {
    return f.waiters(v.execution_id) == 1;
  }));
  caf::anon_send_exit(f.node().registry(), caf::exit_reason::user_shutdown);
  REQUIRE(got.wait([&] {
    return got.end.has_value();
  }));
  CHECK(api_error_code(*got.end) == errc::unavailable);
  CHECK(followers_drop_to_zero(f));
}
