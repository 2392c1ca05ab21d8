#include "src/bridges/worker_convert.hpp"

#include <string>
#include <utility>

namespace cerebelum::api {

using actors::task_errc;

error_route route_of(task_errc code) noexcept {
  using grpc::StatusCode;
  using wire::errc;
  switch (code) {
    case task_errc::invalid_argument:
      return {StatusCode::INVALID_ARGUMENT, errc::invalid_argument};
    case task_errc::unknown_worker:
      return {StatusCode::NOT_FOUND, errc::unknown_worker};
    case task_errc::unknown_queue:
      return {StatusCode::NOT_FOUND, errc::invalid_argument};
    case task_errc::stale_token:
      return {StatusCode::FAILED_PRECONDITION, errc::stale_attempt};
    case task_errc::invalid_json:
      return {StatusCode::INVALID_ARGUMENT, errc::invalid_argument};
    case task_errc::oversized:
      return {StatusCode::INVALID_ARGUMENT, errc::invalid_argument};
    case task_errc::invalid_workflow:
      return {StatusCode::INVALID_ARGUMENT, errc::invalid_argument};
    case task_errc::permission_denied:
      return {StatusCode::PERMISSION_DENIED, errc::permission_denied};
    case task_errc::unavailable:
      return {StatusCode::UNAVAILABLE, errc::unavailable};
    case task_errc::not_found:
      return {StatusCode::NOT_FOUND, errc::invalid_argument};
    case task_errc::not_retryable:
      return {StatusCode::FAILED_PRECONDITION, errc::invalid_argument};
  }
  return {StatusCode::INTERNAL, errc::internal};
}

grpc::Status to_status(const actors::task_error& err) {
  return {route_of(err.code).grpc,
          std::string{actors::to_string(err.code)} + ": " + err.message};
}

caf::error to_wire_error(const actors::task_error& err) {
  auto code = route_of(err.code).wire;
  std::string name = actors::to_string(err.code);
  if (wire::to_string(code) == name) return wire::make_error(code, err.message);
  return wire::make_error(code, name + ": " + err.message);
}

actors::worker_registration
to_registration(const worker::RegisterRequest& req) {
  actors::worker_registration reg;
  reg.worker_id = req.worker_id();
  reg.queues.assign(req.queues().begin(), req.queues().end());
  reg.max_in_flight = req.max_in_flight();
  for (auto& w : req.workflows())
    reg.workflows.push_back({w.name(), w.format(), w.text()});
  return reg;
}

actors::task_result<actors::task_outcome>
to_outcome(const worker::CompleteTaskRequest& req) {
  using res_t = actors::task_result<actors::task_outcome>;
  switch (req.outcome_case()) {
    case worker::CompleteTaskRequest::kResultJson:
      return res_t::ok(actors::task_success{req.result_json()});
    case worker::CompleteTaskRequest::kError: {
      auto& e = req.error();
      return res_t::ok(actors::task_failure{e.kind(), e.message(),
                                            e.details_json(), e.retryable()});
    }
    case worker::CompleteTaskRequest::kSuspend: {
      auto& s = req.suspend();
      return res_t::ok(
        actors::task_suspend{s.wait_key(), s.sleep_ms(), s.approval(),
                             s.approval_data_json(), s.approval_timeout_ms()});
    }
    case worker::CompleteTaskRequest::OUTCOME_NOT_SET: break;
  }
  return res_t::fail(task_errc::invalid_argument,
                     "CompleteTask needs one of result_json, error or "
                     "suspend");
}

worker::RegisterResponse to_proto(const actors::registration_info& x) {
  worker::RegisterResponse res;
  for (auto& name : x.workflows)
    res.add_workflows(name);
  res.set_lease_timeout_ms(x.lease_timeout_ms);
  return res;
}

worker::Task to_proto(const actors::leased_task& x) {
  worker::Task t;
  t.set_task_id(x.task_id);
  t.set_attempt_token(x.attempt_token);
  t.set_execution_id(x.execution_id);
  t.set_workflow(x.workflow);
  t.set_step(x.step);
  t.set_task_type(x.task_type);
  t.set_queue(x.queue);
  t.set_attempt(x.attempt);
  t.set_input_json(x.input_json);
  t.set_idempotency_key(x.idempotency_key);
  t.set_lease_expires_at_ms(x.lease_expires_at_ms);
  t.set_heartbeat_timeout_ms(x.heartbeat_timeout_ms);
  t.set_start_to_close_timeout_ms(x.start_to_close_timeout_ms);
  t.set_resume_json(x.resume_json);
  return t;
}

worker::HeartbeatResponse to_proto(const actors::heartbeat_info& x) {
  worker::HeartbeatResponse res;
  res.set_lease_expires_at_ms(x.lease_expires_at_ms);
  res.set_cancel_requested(x.cancel_requested);
  return res;
}

worker::CompleteTaskResponse to_proto(const actors::complete_info& x) {
  worker::CompleteTaskResponse res;
  res.set_recorded(x.recorded);
  if (x.next) *res.mutable_next_task() = to_proto(*x.next);
  return res;
}

worker::UnregisterResponse unregistered(std::uint32_t requeued) {
  worker::UnregisterResponse res;
  res.set_requeued(requeued);
  return res;
}

} // namespace cerebelum::api
