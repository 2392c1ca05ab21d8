// What a client of the WorkerService may not do to other workers' tasks and
// to the node's workflows (docs/worker-protocol.md, "Security"), against the
// real node binary over gRPC.

#include <catch2/catch.hpp>

#include <string>

#include "tests/node/node_fixture.hpp"
#include "tests/workers/worker_client.hpp"

using namespace cerebelum;
using namespace cerebelum::test;
using namespace std::chrono_literals;
using pc = events::Event::PayloadCase;

namespace {

/// One task step; registered by the victim worker.
const char* one_task = R"(
name: ws_one
version: "1"
output: "steps.work"
steps:
  - name: work
    task: t.work
    queue: sq
)";

/// A worker's workflow named like the node's tests/workers/workflows/
/// wt_crash.yaml, with its own step.
const char* fake_crash = R"(
name: wt_crash
version: "evil"
steps:
  - name: stolen
    task: t.stolen
    queue: cq
)";

/// `version` and step `step` of a worker's workflow ws_own.
std::string own_flow(const std::string& version, const std::string& step) {
  return "name: ws_own\nversion: \"" + version + "\"\nsteps:\n  - name: " + step
         + "\n    task: t.own\n    queue: oq\n";
}

/// A worker's workflow with a native call (the demo node's functions).
const char* with_call = R"(
name: ws_calls
version: "1"
steps:
  - name: native
    call: orders.validate
)";

/// The internal token of the attempt of `step` scheduled in `history`, as
/// anyone who may read the history sees it.
std::string scheduled_token(const std::vector<events::Event>& history,
                            const std::string& step) {
  for (auto& ev : history)
    if (ev.has_step_scheduled() && ev.step_scheduled().step() == step)
      return ev.step_scheduled().attempt_token();
  return {};
}

} // namespace

TEST_CASE("a client that registers under a worker's id and builds the attempt "
          "token from the history cannot complete the worker's task") {
  node_process node;
  worker_client victim{node.grpc_port};
  worker_client thief{node.grpc_port};
  REQUIRE(victim.register_worker("victim", {"sq"}, one_task).ok());
  auto id = victim.start("ws_one", "{}");
  auto task = victim.poll_until("victim", 10s);
  REQUIRE(task);
  // The thief reads the history and takes the victim's identity.
  auto internal = scheduled_token(thief.history(id), "work");
  REQUIRE_FALSE(internal.empty());
  REQUIRE(thief.register_worker("victim", {"sq"}).ok());
  auto prefix = std::to_string(id.size()) + ":" + id + ":";
  for (auto& forged :
       {prefix + internal, prefix + std::string(32, '0') + ":" + internal}) {
    INFO(forged);
    CHECK(forged != task->attempt_token());
    bool recorded = true;
    auto st = thief.complete("victim", forged, R"({"by": "thief"})", &recorded);
    CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    st = thief.heartbeat("victim", forged);
    CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  }
  CHECK(count_events(thief.history(id), pc::kStepCompleted) == 0);
  // The lease is untouched: the victim's completion records.
  bool recorded = false;
  auto st = victim.complete("victim", task->attempt_token(),
                            R"({"by": "victim"})", &recorded);
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(recorded);
  auto info = victim.wait(id, 10s);
  CHECK(info.status() == "completed");
  CHECK(nlohmann::json::parse(info.result_json())
        == nlohmann::json{{"by", "victim"}});
  // The token's secret is nowhere in the history.
  auto token = task->attempt_token();
  REQUIRE(token.rfind(prefix, 0) == 0);
  auto secret = token.substr(prefix.size(), 32);
  for (auto& ev : victim.history(id))
    CHECK(ev.SerializeAsString().find(secret) == std::string::npos);
}

TEST_CASE("a worker may not replace a workflow of the node's files, and starts "
          "keep running the operator's version") {
  node_process node;
  worker_client c{node.grpc_port};
  auto st = c.register_worker("intruder", {"cq"}, fake_crash);
  CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(st.error_message(),
             Catch::Contains("workflow 'wt_crash' is defined by the node's "
                             "workflow files; a worker may not replace it"));
  // Refused as a whole: the worker is not registered either.
  std::optional<worker::Task> none;
  CHECK(c.poll("intruder", none, 100ms).error_code()
        == grpc::StatusCode::NOT_FOUND);
  REQUIRE(c.register_worker("honest", {"cq"}).ok());
  c.start("wt_crash", R"({"id": 1})");
  auto task = c.poll_until("honest", 10s);
  REQUIRE(task);
  CHECK(task->step() == "only");
  CHECK(task->task_type() == "t.only");
}

TEST_CASE("on a node without tokens a worker restarted under a new id "
          "registers its workflow again and deploys new versions") {
  // Worker ids prove nothing without tokens, so the workers' workflows are
  // the workers' (the node's files stay the operator's, see above); with
  // tokens a name belongs to the token (caf_security_test).
  node_process node;
  worker_client c{node.grpc_port};
  REQUIRE(c.register_worker("host-1-aa", {"oq"}, own_flow("1", "first")).ok());
  {
    worker::UnregisterRequest req;
    req.set_worker_id("host-1-aa");
    worker::UnregisterResponse res;
    auto ctx = context_for();
    REQUIRE(c.workers().Unregister(ctx.get(), req, &res).ok());
  }
  // The same program again, as a new process with a new id.
  auto st = c.register_worker("host-2-bb", {"oq"}, own_flow("1", "first"));
  INFO(st.error_message());
  REQUIRE(st.ok());
  st = c.register_worker("host-2-bb", {"oq"}, own_flow("2", "second"));
  INFO(st.error_message());
  REQUIRE(st.ok());
  c.start("ws_own", "{}");
  auto task = c.poll_until("host-2-bb", 10s);
  REQUIRE(task);
  CHECK(task->step() == "second");
}

TEST_CASE("a worker's workflow with a native call is refused unless the node "
          "allows worker calls") {
  SECTION("by default") {
    node_process node;
    worker_client c{node.grpc_port};
    auto st = c.register_worker("w", {"q"}, with_call);
    CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_THAT(st.error_message(), Catch::Contains("orders.validate"));
    CHECK_THAT(st.error_message(), Catch::Contains("--allow-worker-calls"));
  }
  SECTION("with --allow-worker-calls") {
    node_process node{{}, {}, {}, {"--allow-worker-calls"}};
    worker_client c{node.grpc_port};
    auto st = c.register_worker("w", {"q"}, with_call);
    INFO(st.error_message());
    CHECK(st.ok());
  }
}
