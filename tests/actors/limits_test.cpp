// Size limits at every edge (docs/engine.md, "Size limits"): what is over
// the node's payload limit is refused before anything is written or fails
// its step; what the engine builds over the value limit fails its step or
// the execution; an append the store refuses for good fails the execution
// instead of being retried forever.

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "actors/errc.hpp"
#include "tests/actors/engine_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using namespace std::chrono_literals;
using status = cerebelum::eventstore::execution_status;
namespace events = cerebelum::events;

namespace {

const char* blob_yaml = R"(name: blob
version: "1"
steps:
  - name: make
    call: t.blob
    input: { n: "input.i" }
    retry: { max_attempts: 3, initial_interval: 10ms }
)";

const char* blob_map_yaml = R"(name: blob_map
version: "1"
steps:
  - name: each
    map: { over: "[1, 2, 3]" }
    call: t.blob
    input: { n: "input.i" }
)";

const char* blob_output_yaml = R"(name: blob_output
version: "1"
steps:
  - name: x
    call: t.blob
    input: { n: "input.i" }
  - name: y
    call: t.blob
    input: { n: "input.i" }
output:
  x: "steps.x"
  y: "steps.y"
)";

const char* blob_task_yaml = R"(name: blob_task
version: "1"
steps:
  - name: work
    task: t.work
    queue: bq
    retry: { max_attempts: 3, initial_interval: 10ms }
)";

/// An engine with t.blob (a string of input.n bytes) and the workflows
/// above, its payload limit set to `limit`.
struct blob_engine : engine_fixture {
  explicit blob_engine(std::size_t limit = max_payload_bytes_limit) {
    config().max_payload_bytes = limit;
    config().functions->add("t.blob", [](const json& in) {
      return json(std::string(in.at("n").get<std::size_t>(), 'b'));
    });
    auto dir = data_dir() / "workflows";
    std::ofstream{dir / "blob.yaml"} << blob_yaml;
    std::ofstream{dir / "blob_map.yaml"} << blob_map_yaml;
    std::ofstream{dir / "blob_output.yaml"} << blob_output_yaml;
    std::ofstream{dir / "blob_task.yaml"} << blob_task_yaml;
  }
};

/// The view of `id` once finished (REQUIREs that it finishes in time).
execution_view finished(engine_api& api, const std::string& id) {
  auto done = api.wait(id, wait_time);
  REQUIRE(done);
  return *done;
}

} // namespace

TEST_CASE("a start input over the payload limit is refused with "
          "payload_too_large and nothing is written") {
  blob_engine f{1000};
  f.start();
  start_request req;
  req.workflow = "blob";
  req.input = json{{"i", 1}, {"pad", std::string(2000, 'p')}};
  auto started = f.api().start(req);
  REQUIRE_FALSE(started);
  CHECK(api_error_code(started.error()) == errc::payload_too_large);
  auto msg = api_error_message(started.error());
  CHECK(msg.find("input is 2016 bytes") != std::string::npos);
  CHECK(msg.find("limit of 1000 bytes") != std::string::npos);
  auto listed = f.api().list({});
  REQUIRE(listed);
  CHECK(listed->executions.empty());
}

TEST_CASE("approval data over the payload limit is refused and the "
          "execution still awaits its approval") {
  blob_engine f{1000};
  f.start();
  auto v = f.start("gated", 1);
  REQUIRE(f.wait_status(v.execution_id, status::awaiting_approval));
  auto refused = f.api().approve(v.execution_id, "ops",
                                 json{{"x", std::string(1500, 'd')}});
  REQUIRE_FALSE(refused);
  CHECK(api_error_code(refused.error()) == errc::payload_too_large);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kApprovalGranted)
        == 0);
  auto granted = f.api().approve(v.execution_id, "ops", json{{"x", 1}});
  REQUIRE(granted);
  CHECK(finished(f.api(), v.execution_id).status == status::completed);
}

TEST_CASE("a native result over the payload limit fails its step once, not "
          "retryable, naming the size and the limit") {
  blob_engine f{1000};
  f.start();
  auto v = f.start("blob", 5000);
  auto done = finished(f.api(), v.execution_id);
  CHECK(done.status == status::failed);
  REQUIRE(done.error);
  CHECK(done.error->kind == "payload_too_large");
  CHECK(done.error->message.find("5002 bytes") != std::string::npos);
  CHECK(done.error->message.find("limit of 1000 bytes") != std::string::npos);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepFailed) == 1);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepScheduled) == 1);
}

TEST_CASE("a worker result over the payload limit fails its step once, not "
          "retryable") {
  blob_engine f{1000};
  f.start();
  auto tasks = f.node().tasks();
  REQUIRE(sync<registration_info>([&](auto done) {
    tasks->register_worker({"w1", {"bq"}, {}, 1, {}}, std::move(done));
  }));
  auto v = f.start("blob_task", 1);
  auto polled = sync<std::optional<leased_task>>([&](auto done) {
    tasks->poll("w1", {"bq"}, 10s, std::move(done));
  });
  REQUIRE(polled);
  REQUIRE(*polled.value);
  auto big = "\"" + std::string(3000, 'r') + "\"";
  auto completed = sync<complete_info>([&](auto done) {
    tasks->complete("w1", (*polled.value)->attempt_token, task_success{big},
                    std::move(done));
  });
  CHECK(completed);
  auto done = finished(f.api(), v.execution_id);
  CHECK(done.status == status::failed);
  REQUIRE(done.error);
  CHECK(done.error->kind == "payload_too_large");
  CHECK(done.error->message.find("3002 bytes") != std::string::npos);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepFailed) == 1);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepCompleted) == 0);
}

TEST_CASE("a map step whose combined results are over the value limit "
          "fails") {
  blob_engine f;
  f.start();
  // Three results of 400,000 bytes: each fits, together they do not.
  auto v = f.start("blob_map", 400'000);
  auto done = finished(f.api(), v.execution_id);
  CHECK(done.status == status::failed);
  REQUIRE(done.error);
  CHECK(done.error->kind == "payload_too_large");
  CHECK(done.error->message.find("map step 'each'") != std::string::npos);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepCompleted) == 3);
}

// The output is a value template: the decider holds it to max_value_bytes
// (workflow/definition.cpp) and fails the execution before it is recorded.
TEST_CASE("an output over the value limit fails the execution") {
  blob_engine f;
  f.start();
  auto v = f.start("blob_output", 600'000);
  auto done = finished(f.api(), v.execution_id);
  CHECK(done.status == status::failed);
  REQUIRE(done.error);
  CHECK(done.error->kind == "expression_error");
  CHECK(done.error->message.find("1000000") != std::string::npos);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kExecutionCompleted)
        == 0);
}

TEST_CASE("an append the store refuses for good fails the execution instead "
          "of being retried") {
  blob_engine f;
  // The store takes events of at most 4,000 bytes: a result of 10,000
  // bytes passes the node's payload limit but not the store.
  f.config().store_limits.max_payload_bytes = 4000;
  f.start();
  auto v = f.start("blob", 10'000);
  auto done = finished(f.api(), v.execution_id);
  CHECK(done.status == status::failed);
  REQUIRE(done.error);
  CHECK(done.error->kind == "payload_too_large");
  CHECK(done.error->message.find("the limit (max_payload_bytes) is 4000")
        != std::string::npos);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kStepCompleted) == 0);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kExecutionFailed)
        == 1);
  // Its actor let go: nothing is retried any more.
  CHECK(f.wait_passivated(v.execution_id));
}
