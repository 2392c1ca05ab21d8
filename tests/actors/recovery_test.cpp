// Crashes of execution actors, resurrection after a restart on the same data
// directory, and the engine on PostgreSQL.

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <future>

#include "actors/engine_context.hpp"
#include "actors/errc.hpp"
#include "actors/history.hpp"
#include "actors/task_api.hpp"
#include "eventstore/codec.hpp"
#include "eventstore/sqlite_store.hpp"
#include "tests/actors/engine_fixture.hpp"
#include "workflow/loader.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
namespace events = cerebelum::events;
namespace wf = cerebelum::workflow;
namespace es = cerebelum::eventstore;

TEST_CASE("a crashed execution actor restarts from its events") {
  engine_fixture f;
  auto crashes = std::make_shared<std::atomic<int>>(0);
  f.config().before_decide = [crashes](const std::string& id) {
    if (id == "crash-twice" && crashes->fetch_add(1) < 2)
      throw std::runtime_error("injected bug");
  };
  f.start();
  auto v = f.start("timeline", 1, "crash-twice");
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 7}});
  CHECK(count_of(f.api(), v.execution_id, events::Event::kExecutionStarted)
        == 1);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepCompleted) == 3);
  CHECK(crashes->load() >= 3);
}

TEST_CASE(
  "an execution whose actor keeps crashing fails and the node stays up") {
  engine_fixture f;
  f.config().restart_budget = 2;
  f.config().before_decide = [](const std::string& id) {
    if (id == "doomed") throw std::runtime_error("always broken");
  };
  f.start();
  auto v = f.start("timeline", 1, "doomed");
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::failed);
  REQUIRE(done->error);
  CHECK(done->error->kind == "crashed");
  CHECK(done->error->message.find("always broken") != std::string::npos);
  // The node is still up: another execution runs to the end.
  auto other = f.start("timeline", 2);
  auto ok = f.api().wait(other.execution_id, wait_time);
  REQUIRE(ok);
  CHECK(ok->result == json{{"n", 9}});
}

TEST_CASE(
  "the tasks of an execution failed after crashes can no longer be leased") {
  engine_fixture f;
  {
    std::ofstream out{f.data_dir() / "workflows" / "tasked.yaml"};
    out << "name: tasked\nversion: \"1\"\nsteps:\n  - name: work\n"
           "    task: t.work\n    queue: tq\n    input: { n: \"input.i\" }\n";
  }
  f.config().restart_budget = 1;
  f.config().before_decide = [](const std::string& id) {
    if (id == "doomed-task") throw std::runtime_error("always broken");
  };
  f.start();
  // The start commits the task row of `work` and hands it to the router;
  // the actor then crashes at every decision until it is marked failed.
  auto v = f.start("tasked", 1, "doomed-task");
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  REQUIRE(done->status == status::failed);
  CHECK(done->error->kind == "crashed");
  auto tasks = f.node().tasks();
  f.register_worker("w", "tq");
  // The router learnt of the deletion before the waiter learnt of the end
  // (both sent by the actor after the commit, the router first): a poll
  // finds nothing to lease.
  std::promise<task_result<std::optional<leased_task>>> polled;
  tasks->poll("w", {"tq"}, std::chrono::milliseconds{200},
              [&](task_result<std::optional<leased_task>> r) {
                polled.set_value(std::move(r));
              });
  auto got = polled.get_future().get();
  REQUIRE(got);
  CHECK_FALSE(got.value->has_value());
}

TEST_CASE("an append by another writer is answered as a conflict, not "
          "retried") {
  engine_fixture f;
  // Resident while it awaits approval: its actor holds the state it wrote.
  f.config().passivation_delay = std::chrono::minutes{1};
  f.start();
  auto v = f.start("gated", 1, "two-writers");
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  {
    // Another writer (another node, or a bug) records a cancel request.
    es::sqlite_options opts;
    opts.data_dir = f.data_dir().string();
    opts.open_check = es::sqlite_open_check::none;
    auto store = es::open_sqlite_store(opts);
    REQUIRE(store);
    auto def = wf::load_file(f.data_dir() / "workflows" / "gated.yaml");
    REQUIRE(def);
    wf::execution_state state{*def, v.execution_id};
    auto n = es::read_history(**store, v.execution_id, 0,
                              [&](const events::Event& ev) {
                                return static_cast<bool>(state.apply(ev));
                              });
    REQUIRE(n);
    auto seq = state.next_seq();
    auto before = capture_rows(state);
    auto now = real_clock()->now_ms();
    events::Event ev;
    ev.set_seq(seq);
    ev.set_recorded_at_ms(now);
    ev.mutable_cancel_requested()->set_by("elsewhere");
    REQUIRE(state.apply(ev));
    REQUIRE((*store)->append(make_append(state, seq, {ev}, before, {}, now)));
  }
  auto res = f.api().approve(v.execution_id, "alice", json::object());
  REQUIRE_FALSE(res);
  CHECK(api_error_code(res.error()) == errc::internal);
  CHECK(api_error_message(res.error()).find("another writer")
        != std::string::npos);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kApprovalGranted)
        == 0);
  // The actor read the history again and acts on the cancel it found.
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::cancelled);
}

TEST_CASE("a command whose actor crashes while recording it is answered "
          "at once and can be sent again") {
  engine_fixture f;
  // Resident while it awaits approval: the command is folded by a live
  // actor, which then crashes.
  f.config().passivation_delay = std::chrono::minutes{1};
  auto armed = std::make_shared<std::atomic<bool>>(false);
  f.config().before_decide = [armed](const std::string& id) {
    if (id == "crash-on-approve" && armed->exchange(false))
      throw std::runtime_error("injected bug");
  };
  f.start();
  auto v = f.start("gated", 1, "crash-on-approve");
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  armed->store(true);
  auto res = f.api().approve(v.execution_id, "alice", json::object());
  REQUIRE_FALSE(res);
  CHECK(api_error_code(res.error()) == errc::unavailable);
  // Answered by the crashing actor, not when the wait for an answer ends.
  CHECK(api_error_message(res.error()).find("crashed before recording")
        != std::string::npos);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kApprovalGranted)
        == 0);
  // The restarted actor folded the history: the approval is still pending.
  auto again = f.api().approve(v.execution_id, "alice", json::object());
  INFO((again ? std::string{"ok"} : api_error_message(again.error())));
  REQUIRE(again);
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
}

TEST_CASE("an execution interrupted mid-step is resurrected and completes") {
  engine_fixture f;
  {
    // What a kill -9 leaves behind: execution_started and the first
    // step_scheduled committed, no result.
    es::sqlite_options opts;
    opts.data_dir = f.data_dir().string();
    auto store = es::open_sqlite_store(opts);
    REQUIRE(store);
    auto def = wf::load_file(f.data_dir() / "workflows" / "timeline.yaml");
    REQUIRE(def);
    wf::execution_state state{*def, "mid-step"};
    auto now = real_clock()->now_ms();
    std::vector<events::Event> evs{
      wf::make_started_event(*def, json{{"i", 10}}, now, "test")};
    REQUIRE(state.apply(evs[0]));
    auto before = capture_rows(state);
    auto dec = wf::decide(state, now);
    REQUIRE(dec);
    REQUIRE(!dec->events.empty());
    for (auto& ev : dec->events)
      evs.push_back(ev);
    auto ack = (*store)->append(make_append(state, 0, evs, before, {}, now));
    REQUIRE(ack);
  }
  f.start();
  auto done = f.api().wait("mid-step", wait_time);
  REQUIRE(done);
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 25}}); // ((10 + 1) * 2) + 3
  CHECK(count_of(f.api(), "mid-step", events::Event::kStepCompleted) == 3);
}

TEST_CASE("sleeping and waiting executions survive a restart of the node") {
  engine_fixture f;
  auto& clk = f.start_on_manual_clock();
  auto sleeper = f.start("sleeper", 1500);
  auto gated = f.start("gated", 3);
  REQUIRE(f.wait_status(sleeper.execution_id, status::sleeping));
  REQUIRE(f.wait_status(gated.execution_id, status::awaiting_approval));
  f.stop();
  f.start();
  auto desc = f.api().describe(gated.execution_id);
  REQUIRE(desc);
  CHECK(desc->status == status::awaiting_approval);
  REQUIRE(f.api().approve(gated.execution_id, "dave", json::object()));
  auto g = f.api().wait(gated.execution_id, wait_time);
  REQUIRE(g);
  CHECK(g->status == status::completed);
  // The new scheduler read the timer row back; it fires at its moment.
  CHECK(f.api().describe(sleeper.execution_id)->status == status::sleeping);
  clk.advance(std::chrono::milliseconds{1500});
  auto s = f.api().wait(sleeper.execution_id, wait_time);
  REQUIRE(s);
  CHECK(s->status == status::completed);
  CHECK(s->result == json{{"n", 1501}});
  CHECK(count_of(f.api(), sleeper.execution_id, events::Event::kTimerFired)
        == 1);
}

TEST_CASE("the engine runs timelines and approvals on PostgreSQL") {
  auto conninfo = test::pg_conninfo();
  if (conninfo.empty())
    FAIL("CEREBELUM_TEST_PG is not set: run ./cerebelum.sh test, or start a "
         "server with scripts/pg-throwaway.sh start DIR and export the "
         "connection string it prints");
  engine_fixture f{conninfo};
  f.start();
  auto v = f.start("timeline", 1);
  auto gated = f.start("gated", 2);
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->result == json{{"n", 7}});
  REQUIRE(f.wait_status(gated.execution_id, status::awaiting_approval));
  REQUIRE(f.api().approve(gated.execution_id, "erin", json::object()));
  auto g = f.api().wait(gated.execution_id, wait_time);
  REQUIRE(g);
  CHECK(g->status == status::completed);
}
