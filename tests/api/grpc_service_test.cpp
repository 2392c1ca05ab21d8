// The AdminService over a real in-process gRPC server and the in-memory test
// double of the engine: status codes, messages, JSON fields.

#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>

#include "src/bridges/admin_service.hpp"
#include "tests/api/fake_engine.hpp"

using cerebelum::test::fake_engine;
using st = cerebelum::eventstore::execution_status;
namespace admin = cerebelum::admin;

namespace {

/// Checks that `status` failed with `code` and a message containing `text`.
void check_failed(const grpc::Status& status, grpc::StatusCode code,
                  const std::string& text) {
  CHECK(status.error_code() == code);
  CHECK_THAT(status.error_message(), Catch::Contains(text));
}

struct fixture {
  std::shared_ptr<fake_engine> engine = std::make_shared<fake_engine>();
  cerebelum::api::admin_service service{engine};
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<admin::AdminService::Stub> stub;

  fixture() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials());
    stub = admin::AdminService::NewStub(channel);
  }

  ~fixture() {
    server->Shutdown();
  }

  grpc::Status start(const std::string& workflow, const std::string& input,
                     admin::StartExecutionResponse& res,
                     const std::string& id = "") {
    grpc::ClientContext ctx;
    admin::StartExecutionRequest req;
    req.set_workflow(workflow);
    req.set_input_json(input);
    req.set_execution_id(id);
    return stub->StartExecution(&ctx, req, &res);
  }

  grpc::Status approve(const std::string& id, const std::string& by,
                       const std::string& data) {
    grpc::ClientContext ctx;
    admin::ApproveRequest req;
    req.set_execution_id(id);
    req.set_by(by);
    req.set_data_json(data);
    admin::ExecutionInfo info;
    return stub->Approve(&ctx, req, &info);
  }
};

} // namespace

TEST_CASE("StartExecution returns the execution with its input as JSON text") {
  fixture f;
  admin::StartExecutionResponse res;
  auto status = f.start("order", R"({"order_id":"o-1"})", res);
  REQUIRE(status.ok());
  CHECK(res.created());
  CHECK(res.execution().status() == "running");
  CHECK(nlohmann::json::parse(res.execution().input_json())
        == nlohmann::json{{"order_id", "o-1"}});
}

TEST_CASE("StartExecution with a known id returns the existing execution") {
  fixture f;
  admin::StartExecutionResponse first;
  admin::StartExecutionResponse second;
  REQUIRE(f.start("order", "{}", first, "fixed").ok());
  REQUIRE(f.start("order", R"({"other":1})", second, "fixed").ok());
  CHECK(first.created());
  CHECK_FALSE(second.created());
  CHECK(second.execution().input_json() == "{}");
}

TEST_CASE("StartExecution of an unknown workflow is NOT_FOUND") {
  fixture f;
  admin::StartExecutionResponse res;
  auto status = f.start("nope", "{}", res);
  check_failed(status, grpc::StatusCode::NOT_FOUND, "nope");
}

TEST_CASE("StartExecution with malformed input is INVALID_ARGUMENT naming the "
          "field") {
  fixture f;
  admin::StartExecutionResponse res;
  auto status = f.start("order", "{not json", res);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::StartsWith("input_json: "));
  status = f.start("order", "[1,2]", res);
  check_failed(status, grpc::StatusCode::INVALID_ARGUMENT,
               "must be a JSON object");
}

TEST_CASE("StartExecution refuses an id the HTTP read routes could not "
          "address, as HTTP does") {
  fixture f;
  for (const char* id : {"a/b", ".", ".."}) {
    admin::StartExecutionResponse res;
    auto status = f.start("order", "{}", res, id);
    check_failed(status, grpc::StatusCode::INVALID_ARGUMENT, "execution_id");
  }
  admin::StartExecutionResponse res;
  CHECK(f.start("order", "{}", res, "a?b#c.d").ok());
}

TEST_CASE("a start refused by admission control is RESOURCE_EXHAUSTED") {
  fixture f;
  admin::StartExecutionResponse res;
  check_failed(f.start("busy", "{}", res), grpc::StatusCode::RESOURCE_EXHAUSTED,
               "over capacity");
}

TEST_CASE("DescribeExecution of an unknown id is NOT_FOUND") {
  fixture f;
  grpc::ClientContext ctx;
  admin::DescribeExecutionRequest req;
  req.set_execution_id("missing");
  admin::ExecutionInfo info;
  auto status = f.stub->DescribeExecution(&ctx, req, &info);
  check_failed(status, grpc::StatusCode::NOT_FOUND, "missing");
}

TEST_CASE("Approve of an execution that is not awaiting approval is "
          "FAILED_PRECONDITION") {
  fixture f;
  admin::StartExecutionResponse res;
  REQUIRE(f.start("order", "{}", res, "a").ok());
  auto status = f.approve("a", "alice", "");
  CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  f.engine->set_status("a", st::awaiting_approval);
  REQUIRE(f.approve("a", "alice", R"({"note":"ok"})").ok());
  CHECK(f.engine->last_by == "alice");
  CHECK(f.engine->last_data == nlohmann::json{{"note", "ok"}});
  // Approving twice: the second is a precondition failure, not a crash.
  CHECK(f.approve("a", "alice", "").error_code()
        == grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_CASE("Approve checks the operator's name and the data's JSON") {
  fixture f;
  admin::StartExecutionResponse res;
  REQUIRE(f.start("order", "{}", res, "a").ok());
  f.engine->set_status("a", st::awaiting_approval);
  auto status = f.approve("a", "", "");
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::StartsWith("by: "));
  status = f.approve("a", "bob", "{oops");
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::StartsWith("data_json: "));
}

TEST_CASE("Cancel of a finished execution is FAILED_PRECONDITION") {
  fixture f;
  admin::StartExecutionResponse res;
  REQUIRE(f.start("order", "{}", res, "c").ok());
  f.engine->set_status("c", st::completed);
  grpc::ClientContext ctx;
  admin::CancelRequest req;
  req.set_execution_id("c");
  admin::ExecutionInfo info;
  CHECK(f.stub->Cancel(&ctx, req, &info).error_code()
        == grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_CASE("WaitForResult that times out is DEADLINE_EXCEEDED") {
  fixture f;
  admin::StartExecutionResponse res;
  REQUIRE(f.start("order", "{}", res, "w").ok());
  grpc::ClientContext ctx;
  admin::WaitForResultRequest req;
  req.set_execution_id("w");
  req.set_timeout_ms(300);
  admin::ExecutionInfo info;
  CHECK(f.stub->WaitForResult(&ctx, req, &info).error_code()
        == grpc::StatusCode::DEADLINE_EXCEEDED);
  f.engine->set_status("w", st::completed);
  grpc::ClientContext ctx2;
  REQUIRE(f.stub->WaitForResult(&ctx2, req, &info).ok());
  CHECK(info.status() == "completed");
  CHECK(nlohmann::json::parse(info.result_json())
        == nlohmann::json{{"shipped", true}});
}

TEST_CASE("ListExecutions filters by status and rejects unknown statuses") {
  fixture f;
  admin::StartExecutionResponse res;
  REQUIRE(f.start("order", "{}", res, "x").ok());
  REQUIRE(f.start("order", "{}", res, "y").ok());
  f.engine->set_status("y", st::completed);
  grpc::ClientContext ctx;
  admin::ListExecutionsRequest req;
  req.set_status("completed");
  admin::ListExecutionsResponse list;
  REQUIRE(f.stub->ListExecutions(&ctx, req, &list).ok());
  REQUIRE(list.executions_size() == 1);
  CHECK(list.executions(0).execution_id() == "y");
  grpc::ClientContext ctx2;
  req.set_status("done");
  auto status = f.stub->ListExecutions(&ctx2, req, &list);
  check_failed(status, grpc::StatusCode::INVALID_ARGUMENT, "'done'");
}

TEST_CASE("GetHistory returns the events and NOT_FOUND for an unknown id") {
  fixture f;
  admin::StartExecutionResponse res;
  REQUIRE(f.start("order", "{}", res, "h").ok());
  grpc::ClientContext ctx;
  admin::GetHistoryRequest req;
  req.set_execution_id("h");
  admin::GetHistoryResponse hist;
  REQUIRE(f.stub->GetHistory(&ctx, req, &hist).ok());
  CHECK(hist.events_size() == 2);
  grpc::ClientContext ctx2;
  req.set_execution_id("nope");
  CHECK(f.stub->GetHistory(&ctx2, req, &hist).error_code()
        == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("GetWorkflowOwner answers the owner and NOT_FOUND for a name no "
          "one defined, and TransferWorkflow needs tokens") {
  fixture f;
  grpc::ClientContext ctx;
  admin::GetWorkflowOwnerRequest req;
  req.set_name("order");
  admin::WorkflowOwner owner;
  REQUIRE(f.stub->GetWorkflowOwner(&ctx, req, &owner).ok());
  CHECK(owner.owner() == "token 'a'");
  CHECK(owner.recorded());
  CHECK(owner.previous_owner() == "token 'b'");
  CHECK(owner.replaced_by() == "token 'admin'");
  CHECK(owner.replaced_at_ms() == 5);
  grpc::ClientContext ctx2;
  req.set_name("refund");
  CHECK(f.stub->GetWorkflowOwner(&ctx2, req, &owner).error_code()
        == grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext ctx3;
  admin::TransferWorkflowRequest move;
  move.set_name("order");
  move.set_to("b");
  auto st = f.stub->TransferWorkflow(&ctx3, move, &owner);
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(st.error_message().find("runs without --auth token")
        != std::string::npos);
}

TEST_CASE("CheckUpgrade reports each execution with its first divergence and "
          "counts them") {
  fixture f;
  grpc::ClientContext ctx;
  admin::CheckUpgradeRequest req;
  req.set_definition("name: order");
  req.set_file("order.yaml");
  admin::CheckUpgradeResponse res;
  REQUIRE(f.stub->CheckUpgrade(&ctx, req, &res).ok());
  CHECK(res.workflow() == "order");
  CHECK(res.version() == 8);
  CHECK(res.compatible() == 1);
  CHECK(res.incompatible() == 1);
  REQUIRE(res.executions_size() == 2);
  CHECK(res.executions(0).compatible());
  CHECK(res.executions(1).seq() == 1);
  CHECK(res.executions(1).event_type() == "step_scheduled");
  CHECK(res.executions(1).step() == "validate");
}

TEST_CASE("CheckUpgrade with migrate moves the compatible executions, "
          "recorded with who, and counts them") {
  fixture f;
  grpc::ClientContext ctx;
  admin::CheckUpgradeRequest req;
  req.set_definition("name: order");
  req.set_file("order.yaml");
  req.set_migrate(true);
  req.set_by("bob");
  admin::CheckUpgradeResponse res;
  REQUIRE(f.stub->CheckUpgrade(&ctx, req, &res).ok());
  CHECK(res.migrated() == 1);
  REQUIRE(res.executions_size() == 2);
  CHECK(res.executions(0).migrated());
  CHECK_FALSE(res.executions(1).migrated());
  CHECK(f.engine->migrated_by == "bob");
  grpc::ClientContext ctx2;
  req.set_by("");
  CHECK(f.stub->CheckUpgrade(&ctx2, req, &res).error_code()
        == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("CheckUpgrade of a bad definition is INVALID_ARGUMENT") {
  fixture f;
  grpc::ClientContext ctx;
  admin::CheckUpgradeRequest req;
  req.set_definition("bad");
  admin::CheckUpgradeResponse res;
  CHECK(f.stub->CheckUpgrade(&ctx, req, &res).error_code()
        == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("FollowExecution streams the history and ends OK, NOT_FOUND and "
          "INVALID_ARGUMENT otherwise") {
  fixture f;
  admin::StartExecutionResponse res;
  REQUIRE(f.start("order", "{}", res, "fw").ok());
  grpc::ClientContext ctx;
  admin::FollowExecutionRequest req;
  req.set_execution_id("fw");
  auto reader = f.stub->FollowExecution(&ctx, req);
  cerebelum::events::Event ev;
  std::vector<std::int64_t> seqs;
  while (reader->Read(&ev))
    seqs.push_back(ev.seq());
  CHECK(reader->Finish().ok());
  CHECK(seqs == std::vector<std::int64_t>{0, 1});
  auto status_of = [&f](const std::string& id, std::int64_t from) {
    grpc::ClientContext c;
    admin::FollowExecutionRequest r;
    r.set_execution_id(id);
    r.set_from_seq(from);
    auto rd = f.stub->FollowExecution(&c, r);
    cerebelum::events::Event e;
    while (rd->Read(&e)) {
    }
    return rd->Finish().error_code();
  };
  CHECK(status_of("nope", 0) == grpc::StatusCode::NOT_FOUND);
  CHECK(status_of("fw", -1) == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status_of("", 0) == grpc::StatusCode::INVALID_ARGUMENT);
}
