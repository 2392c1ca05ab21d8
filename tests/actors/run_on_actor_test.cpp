// Native functions registered to run on the execution's actor
// (run_on::actor): they run at once after the commit that scheduled them,
// without the call pool, and their step's timeout still holds.

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/actors/engine_fixture.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using json = nlohmann::json;
using status = cerebelum::eventstore::execution_status;

namespace {

void write_workflow(const engine_fixture& f, const std::string& name,
                    const std::string& yaml) {
  std::ofstream{f.data_dir() / "workflows" / (name + ".yaml")} << yaml;
}

} // namespace

TEST_CASE("functions that run on the actor complete their steps while "
          "every call pool thread is busy") {
  engine_fixture f;
  f.config().call_threads = 1;
  // A pool function that holds the only pool thread until released.
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  f.config().functions->add("t.hold", [released](const json& in) {
    released.wait();
    return in;
  });
  for (auto [name, delta] : {std::pair{"a.inc", 1}, std::pair{"a.add3", 3}})
    f.config().functions->add(
      name,
      [delta = delta](const json& in) {
        return json{{"n", in["n"].get<int>() + delta}};
      },
      run_on::actor);
  write_workflow(f, "holder", R"(name: holder
steps:
  - name: h
    call: t.hold
    input: { n: "input.i" }
)");
  write_workflow(f, "quick", R"(name: quick
steps:
  - name: a
    call: a.inc
    input: { n: "input.i" }
  - name: b
    call: a.add3
    input: { n: "steps.a.n" }
output:
  n: "steps.b.n"
)");
  f.start();
  auto held = f.start("holder", 1, "held-1");
  auto v = f.start("quick", 4, "quick-1");
  // With the functions on the pool, this execution would wait behind the
  // held thread until the deadline.
  auto done = f.api().wait(v.execution_id, std::chrono::seconds{5});
  release->set_value();
  REQUIRE(done);
  INFO((done->error ? done->error->kind + ": " + done->error->message : ""));
  CHECK(done->status == status::completed);
  CHECK(done->result == json{{"n", 8}});
  auto first = f.api().wait(held.execution_id, wait_time);
  REQUIRE(first);
  CHECK(first->status == status::completed);
}

TEST_CASE("a function on the actor that runs past its step's timeout fails "
          "the attempt by the timeout and its result is dropped") {
  engine_fixture f;
  std::atomic<int> runs{0};
  f.config().functions->add(
    "a.slow",
    [&runs](const json& in) {
      ++runs;
      std::this_thread::sleep_for(std::chrono::milliseconds{400});
      return in;
    },
    run_on::actor);
  write_workflow(f, "slowpoke", R"(name: slowpoke
steps:
  - name: s
    call: a.slow
    input: { n: "input.i" }
    timeout: 100ms
)");
  f.start();
  auto v = f.start("slowpoke", 1, "slow-1");
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::failed);
  REQUIRE(done->error);
  INFO(done->error->kind + ": " + done->error->message);
  CHECK(done->error->message.find("did not finish in time")
        != std::string::npos);
  CHECK(
    count_of(f.api(), v.execution_id, cerebelum::events::Event::kStepCompleted)
    == 0);
  CHECK(runs.load() == 1);
}

TEST_CASE("a function on the actor that throws fails its attempt like a "
          "pool function") {
  engine_fixture f;
  f.config().functions->add(
    "a.boom",
    [](const json&) -> json {
      throw step_failure("boom", "it went boom", false);
    },
    run_on::actor);
  write_workflow(f, "boomer", R"(name: boomer
steps:
  - name: x
    call: a.boom
    input: { n: "input.i" }
)");
  f.start();
  auto v = f.start("boomer", 1, "boom-1");
  auto done = f.api().wait(v.execution_id, wait_time);
  REQUIRE(done);
  CHECK(done->status == status::failed);
  REQUIRE(done->error);
  CHECK(done->error->message.find("it went boom") != std::string::npos);
}
