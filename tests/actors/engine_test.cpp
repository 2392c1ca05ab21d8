// The engine in-process on SQLite: flows, passivation, approvals, cancel,
// idempotent start and input errors. Timers, backoff and passivation delays
// are in time_test.cpp, on a manual clock.

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "actors/errc.hpp"
#include "tests/actors/engine_fixture.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
namespace events = cerebelum::events;

TEST_CASE("a timeline of native calls completes with the right result") {
  engine_fixture f;
  f.start();
  auto v = f.start("timeline", 1);
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 7}}); // ((1 + 1) * 2) + 3
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepCompleted) == 3);
  auto listed = f.api().list({});
  REQUIRE(listed);
  REQUIRE(listed->executions.size() == 1);
  CHECK(listed->executions[0].status == status::completed);
}

TEST_CASE("a parallel group joins and its branch picks the target") {
  engine_fixture f;
  f.start();
  auto small = f.start("fanout", 2);
  auto big = f.start("fanout", 9);
  auto s = f.api().wait(small.execution_id, wait_time);
  auto b = f.api().wait(big.execution_id, wait_time);
  REQUIRE(s);
  REQUIRE(b);
  CHECK(s->result == json{{"left", 3}, {"right", 4}});
  CHECK(b->result == json{{"left", 10}, {"right", 18}});
  CHECK(count_of(f.api(), small.execution_id, events::Event::kBranchTaken)
        >= 1);
  auto hist = f.api().history(big.execution_id, 0);
  REQUIRE(hist);
  bool took_big = false;
  for (auto& ev : *hist)
    took_big = took_big
               || (ev.has_branch_taken()
                   && ev.branch_taken().target() == "big");
  CHECK(took_big);
}

TEST_CASE("an execution awaiting approval passivates and resumes on approve") {
  engine_fixture f;
  f.start();
  auto v = f.start("gated", 5);
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  REQUIRE(f.wait_passivated(v.execution_id));
  auto desc = f.api().describe(v.execution_id);
  REQUIRE(desc);
  CHECK(desc->awaiting_step == "ask");
  CHECK(desc->approval_data == json{{"i", 5}});
  auto ok = f.api().approve(v.execution_id, "alice", json{{"note", "fine"}});
  REQUIRE(ok);
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"i", 5}});
  auto hist = f.api().history(v.execution_id, 0);
  REQUIRE(hist);
  bool recorded = false;
  for (auto& ev : *hist)
    recorded = recorded
               || (ev.has_approval_granted()
                   && ev.approval_granted().by() == "alice");
  CHECK(recorded);
}

TEST_CASE("a name typed beside a principal is recorded as a note in the "
          "start and decision events") {
  engine_fixture f;
  f.start();
  start_request req;
  req.workflow = "gated";
  req.input = json{{"i", 3}};
  req.execution_id = "noted-1";
  req.started_by = "ops";
  req.started_by_note = "carol";
  REQUIRE(f.api().start(req));
  REQUIRE(f.wait_status("noted-1", status::awaiting_approval));
  REQUIRE(f.api().approve("noted-1", {"ops", "alice"}, json::object()));
  REQUIRE(f.api().wait("noted-1", wait_time));
  req.execution_id = "noted-2";
  REQUIRE(f.api().start(req));
  REQUIRE(f.wait_status("noted-2", status::awaiting_approval));
  REQUIRE(f.api().cancel("noted-2", {"ops", "dave"}, "not needed"));
  auto done = f.api().wait("noted-2", wait_time);
  REQUIRE(done);
  CHECK(done->status == status::cancelled);
  std::map<std::string, std::pair<std::string, std::string>> seen;
  for (const auto* id : {"noted-1", "noted-2"}) {
    auto hist = f.api().history(id, 0);
    REQUIRE(hist);
    for (auto& ev : *hist) {
      if (ev.has_execution_started())
        seen[std::string{id} + " started"]
          = {ev.execution_started().started_by(),
             ev.execution_started().started_by_note()};
      if (ev.has_approval_granted())
        seen["granted"] = {ev.approval_granted().by(),
                           ev.approval_granted().by_note()};
      if (ev.has_cancel_requested())
        seen["cancel asked"] = {ev.cancel_requested().by(),
                                ev.cancel_requested().by_note()};
      if (ev.has_execution_cancelled())
        seen["cancelled"] = {ev.execution_cancelled().by(),
                             ev.execution_cancelled().by_note()};
    }
  }
  using note = std::pair<std::string, std::string>;
  CHECK(seen["noted-1 started"] == note{"ops", "carol"});
  CHECK(seen["noted-2 started"] == note{"ops", "carol"});
  CHECK(seen["granted"] == note{"ops", "alice"});
  CHECK(seen["cancel asked"] == note{"ops", "dave"});
  CHECK(seen["cancelled"] == note{"ops", "dave"});
  // A note is held to the rules of a name.
  auto bad = f.api().approve("noted-1", {"ops", std::string(300, 'x')},
                             json::object());
  REQUIRE_FALSE(bad);
  CHECK(api_error_code(bad.error()) == errc::invalid_argument);
  CHECK(api_error_message(bad.error()).find("by") != std::string::npos);
}

TEST_CASE("a rejected approval takes the step's diverge path") {
  engine_fixture f;
  f.start();
  auto v = f.start("gated", 1);
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  REQUIRE(f.api().reject(v.execution_id, "bob", "too risky"));
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  INFO((done->error ? done->error->kind + ": " + done->error->message : ""));
  CHECK(done->status == status::completed);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kApprovalRejected)
        == 1);
  auto hist = f.api().history(v.execution_id, 0);
  REQUIRE(hist);
  for (auto& ev : *hist)
    CHECK_FALSE(
      (ev.has_step_scheduled() && ev.step_scheduled().step() == "go"));
}

TEST_CASE("approving an execution that is not awaiting approval is an error") {
  engine_fixture f;
  f.start();
  auto v = f.start("timeline", 1);
  REQUIRE(f.api().wait(v.execution_id, wait_time));
  auto res = f.api().approve(v.execution_id, "alice", json::object());
  REQUIRE(!res);
  CHECK(api_error_code(res.error()) == errc::not_awaiting_approval);
  CHECK(api_error_message(res.error()).find(v.execution_id)
        != std::string::npos);
  auto missing = f.api().approve("no-such-id", "alice", json::object());
  REQUIRE(!missing);
  CHECK(api_error_code(missing.error()) == errc::not_found);
  auto nobody = f.api().approve(v.execution_id, "", json::object());
  REQUIRE(!nobody);
  CHECK(api_error_code(nobody.error()) == errc::invalid_argument);
}

TEST_CASE(
  "a cancelled execution ends cancelled and cannot be cancelled again") {
  engine_fixture f;
  f.start();
  auto v = f.start("gated", 1);
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  REQUIRE(f.api().cancel(v.execution_id, "carol", "not needed"));
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::cancelled);
  REQUIRE(done->error);
  CHECK(done->error->message.find("carol") != std::string::npos);
  auto again = f.api().cancel(v.execution_id, "carol", "again");
  REQUIRE(!again);
  CHECK(api_error_code(again.error()) == errc::already_terminal);
}

TEST_CASE("starting the same execution id twice returns the existing one") {
  engine_fixture f;
  f.start();
  start_request req{"timeline", json{{"i", 2}}, "order-42", "test"};
  auto first = f.api().start(req);
  REQUIRE(first);
  CHECK(first->created);
  auto second = f.api().start(req);
  REQUIRE(second);
  CHECK_FALSE(second->created);
  CHECK(second->execution.execution_id == "order-42");
  // Concurrent duplicates: exactly one creates it.
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      start_request r{"timeline", json{{"i", 3}}, "dup-1", "test"};
      auto res = f.api().start(r);
      if (res && res->created) ++created;
    });
  for (auto& t : threads)
    t.join();
  CHECK(created == 1);
  auto done = f.api().wait("dup-1", wait_time);
  REQUIRE(done);
  CHECK(done->result == json{{"n", 11}});
  CHECK(count_of(f.api(), "dup-1", events::Event::kExecutionStarted) == 1);
}

TEST_CASE("bad starts are refused with errors that name the problem") {
  engine_fixture f;
  f.start();
  auto unknown = f.api().start({"nope", json::object(), "", ""});
  REQUIRE(!unknown);
  CHECK(api_error_code(unknown.error()) == errc::unknown_workflow);
  CHECK(api_error_message(unknown.error()).find("nope") != std::string::npos);
  auto not_object = f.api().start({"timeline", json::array(), "", ""});
  REQUIRE(!not_object);
  CHECK(api_error_code(not_object.error()) == errc::invalid_argument);
  auto huge = f.api().start(
    {"timeline", json{{"i", 1}, {"pad", std::string(2 << 20, 'x')}}, "", ""});
  REQUIRE(!huge);
  CHECK(api_error_code(huge.error()) == errc::payload_too_large);
  auto missing = f.api().describe("ghost");
  REQUIRE(!missing);
  CHECK(api_error_code(missing.error()) == errc::not_found);
  CHECK(api_error_message(missing.error()).find("ghost") != std::string::npos);
  auto timeout = f.api().wait("ghost", std::chrono::milliseconds{10});
  REQUIRE(!timeout);
  CHECK(api_error_code(timeout.error()) == errc::not_found);
}

TEST_CASE("a wait that outlives its deadline reports deadline_exceeded") {
  engine_fixture f;
  f.start();
  auto v = f.start("gated", 1);
  auto res = f.api().wait(v.execution_id, std::chrono::milliseconds{50});
  REQUIRE(!res);
  CHECK(api_error_code(res.error()) == errc::deadline_exceeded);
}

TEST_CASE("concurrent approvals of one execution have exactly one winner") {
  engine_fixture f;
  f.start();
  auto v = f.start("gated", 1);
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  constexpr int n = 16;
  std::atomic<int> won{0};
  std::atomic<int> refused{0};
  std::vector<std::string> other;
  std::mutex mtx;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      auto res = i % 2 == 0
                   ? f.api().approve(v.execution_id, "op" + std::to_string(i),
                                     json::object())
                   : f.api().reject(v.execution_id, "op" + std::to_string(i),
                                    "no");
      if (res)
        ++won;
      else if (api_error_code(res.error()) == errc::not_awaiting_approval)
        ++refused;
      else {
        std::lock_guard<std::mutex> guard{mtx};
        other.push_back(api_error_message(res.error()));
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(other.empty());
  CHECK(won == 1);
  CHECK(refused == n - 1);
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kApprovalGranted)
          + count_of(f.api(), v.execution_id, events::Event::kApprovalRejected)
        == 1);
}

TEST_CASE("concurrent cancels of one execution record one cancel and no "
          "conflict") {
  engine_fixture f;
  f.start();
  auto v = f.start("gated", 1);
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  constexpr int n = 16;
  std::atomic<int> ok{0};
  std::vector<std::string> other;
  std::mutex mtx;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      auto res = f.api().cancel(v.execution_id, "op" + std::to_string(i), "");
      if (res)
        ++ok;
      else if (api_error_code(res.error()) != errc::already_terminal) {
        std::lock_guard<std::mutex> guard{mtx};
        other.push_back(api_error_message(res.error()));
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(other.empty());
  CHECK(ok >= 1);
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::cancelled);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kCancelRequested)
        == 1);
}
