// The one conversion between the task router's facade and the worker
// protocol's messages, and the one table of task errors per transport
// (src/bridges/worker_convert.hpp), shared by gRPC and the CAF port.

#include <catch2/catch.hpp>

#include "src/bridges/worker_convert.hpp"

using namespace cerebelum;
using actors::task_errc;

TEST_CASE("each task error maps to the gRPC status and the CAF port error "
          "the docs list") {
  struct row {
    task_errc code;
    grpc::StatusCode grpc;
    wire::errc wire;
  };
  const row table[] = {
    {task_errc::invalid_argument, grpc::StatusCode::INVALID_ARGUMENT,
     wire::errc::invalid_argument},
    {task_errc::unknown_worker, grpc::StatusCode::NOT_FOUND,
     wire::errc::unknown_worker},
    {task_errc::unknown_queue, grpc::StatusCode::NOT_FOUND,
     wire::errc::invalid_argument},
    {task_errc::stale_token, grpc::StatusCode::FAILED_PRECONDITION,
     wire::errc::stale_attempt},
    {task_errc::invalid_json, grpc::StatusCode::INVALID_ARGUMENT,
     wire::errc::invalid_argument},
    {task_errc::oversized, grpc::StatusCode::INVALID_ARGUMENT,
     wire::errc::invalid_argument},
    {task_errc::invalid_workflow, grpc::StatusCode::INVALID_ARGUMENT,
     wire::errc::invalid_argument},
    {task_errc::permission_denied, grpc::StatusCode::PERMISSION_DENIED,
     wire::errc::permission_denied},
    {task_errc::unavailable, grpc::StatusCode::UNAVAILABLE,
     wire::errc::unavailable},
    {task_errc::not_found, grpc::StatusCode::NOT_FOUND,
     wire::errc::invalid_argument},
    {task_errc::not_retryable, grpc::StatusCode::FAILED_PRECONDITION,
     wire::errc::invalid_argument},
  };
  for (const auto& r : table) {
    INFO(actors::to_string(r.code));
    actors::task_error err{r.code, "what went wrong"};
    auto st = api::to_status(err);
    CHECK(st.error_code() == r.grpc);
    CHECK(st.error_message()
          == std::string{actors::to_string(r.code)} + ": what went wrong");
    auto caf_err = api::to_wire_error(err);
    CHECK(wire::error_code(caf_err) == r.wire);
  }
}

TEST_CASE("a CAF port error names the task code only when its own code "
          "does not") {
  auto stale = api::to_wire_error({task_errc::stale_token, "attempt x"});
  CHECK(stale.context().get_as<std::string>(0) == "stale_token: attempt x");
  auto lost = api::to_wire_error({task_errc::unknown_worker, "worker w"});
  CHECK(lost.context().get_as<std::string>(0) == "worker w");
  auto json = api::to_wire_error({task_errc::invalid_json, "not JSON"});
  CHECK(json.context().get_as<std::string>(0) == "invalid_json: not JSON");
}

TEST_CASE("a CompleteTaskRequest converts to the outcome it carries, and "
          "one without an outcome is invalid") {
  worker::CompleteTaskRequest req;
  auto none = api::to_outcome(req);
  REQUIRE(none.error);
  CHECK(none.error->code == task_errc::invalid_argument);
  req.mutable_error()->set_kind("declined");
  req.mutable_error()->set_retryable(false);
  auto failed = api::to_outcome(req);
  REQUIRE(failed);
  auto* f = std::get_if<actors::task_failure>(&*failed.value);
  REQUIRE(f != nullptr);
  CHECK(f->kind == "declined");
  CHECK_FALSE(f->retryable);
  req.mutable_suspend()->set_wait_key("sleep#1");
  req.mutable_suspend()->set_sleep_ms(500);
  auto suspended = api::to_outcome(req);
  REQUIRE(suspended);
  auto* s = std::get_if<actors::task_suspend>(&*suspended.value);
  REQUIRE(s != nullptr);
  CHECK(s->wait_key == "sleep#1");
  CHECK(s->sleep_ms == 500);
  req.set_result_json("{}");
  auto ok = api::to_outcome(req);
  REQUIRE(ok);
  CHECK(std::get<actors::task_success>(*ok.value).result_json == "{}");
}

TEST_CASE("a leased task and a registration convert field for field") {
  actors::leased_task t;
  t.task_id = "t";
  t.attempt_token = "a";
  t.execution_id = "e";
  t.workflow = "w";
  t.step = "s";
  t.task_type = "x.y";
  t.queue = "q";
  t.attempt = 3;
  t.input_json = "{}";
  t.idempotency_key = "k";
  t.lease_expires_at_ms = 11;
  t.heartbeat_timeout_ms = 12;
  t.start_to_close_timeout_ms = 13;
  t.resume_json = R"({"sleep#1": true})";
  auto m = api::to_proto(t);
  CHECK(m.task_id() == "t");
  CHECK(m.attempt_token() == "a");
  CHECK(m.execution_id() == "e");
  CHECK(m.workflow() == "w");
  CHECK(m.step() == "s");
  CHECK(m.task_type() == "x.y");
  CHECK(m.queue() == "q");
  CHECK(m.attempt() == 3);
  CHECK(m.input_json() == "{}");
  CHECK(m.idempotency_key() == "k");
  CHECK(m.lease_expires_at_ms() == 11);
  CHECK(m.heartbeat_timeout_ms() == 12);
  CHECK(m.start_to_close_timeout_ms() == 13);
  CHECK(m.resume_json() == t.resume_json);
  worker::RegisterRequest req;
  req.set_worker_id("w-1");
  req.add_queues("q1");
  req.set_max_in_flight(2);
  auto* src = req.add_workflows();
  src->set_name("a.yaml");
  src->set_format("yaml");
  src->set_text("name: a");
  auto reg = api::to_registration(req);
  CHECK(reg.worker_id == "w-1");
  CHECK(reg.queues == std::vector<std::string>{"q1"});
  CHECK(reg.max_in_flight == 2);
  REQUIRE(reg.workflows.size() == 1);
  CHECK(reg.workflows[0].name == "a.yaml");
  CHECK(reg.workflows[0].format == "yaml");
  CHECK(reg.workflows[0].text == "name: a");
}
