#include "src/bridges/worker_service.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace cerebelum::api {

namespace {

using namespace std::chrono_literals;

/// Blocks the calling gRPC thread until a task API callback delivers.
template <class T>
class waiter {
 public:
  actors::task_api::callback<T> callback() {
    auto self = state_;
    return [self](actors::task_result<T> r) {
      std::lock_guard<std::mutex> guard{self->mtx};
      self->res = std::move(r);
      self->cv.notify_all();
    };
  }

  /// Waits for the result; returns nothing when `give_up` says so first
  /// (checked every 100 ms) or after `limit`.
  template <class Pred>
  std::optional<actors::task_result<T>>
  wait(Pred give_up, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    std::unique_lock<std::mutex> guard{state_->mtx};
    while (!state_->res) {
      if (give_up() || std::chrono::steady_clock::now() >= until)
        return std::nullopt;
      state_->cv.wait_for(guard, 100ms);
    }
    return std::move(state_->res);
  }

 private:
  struct shared {
    std::mutex mtx;
    std::condition_variable cv;
    std::optional<actors::task_result<T>> res;
  };
  std::shared_ptr<shared> state_ = std::make_shared<shared>();
};

grpc::Status unavailable(const char* what) {
  return {grpc::StatusCode::UNAVAILABLE,
          std::string{what} + ": the node did not answer (shutting down?)"};
}

template <class T>
grpc::Status
status_of(const std::optional<actors::task_result<T>>& r, const char* what) {
  if (!r) return unavailable(what);
  if (r->error) return to_status(*r->error);
  return grpc::Status::OK;
}

void fill(worker::Task& t, const actors::leased_task& x) {
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
}

grpc::Status require(const std::string& value, const char* field) {
  if (!value.empty()) return grpc::Status::OK;
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string{field} + " is empty"};
}

/// Longest time a unary call waits for the router (commit included).
constexpr auto call_limit = std::chrono::milliseconds{60'000};

} // namespace

grpc::Status to_status(const actors::task_error& err) {
  using actors::task_errc;
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (err.code) {
    case task_errc::invalid_argument:
    case task_errc::invalid_json:
    case task_errc::oversized:
    case task_errc::invalid_workflow:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case task_errc::unknown_worker:
    case task_errc::unknown_queue:
    case task_errc::not_found: code = grpc::StatusCode::NOT_FOUND; break;
    case task_errc::not_retryable:
    case task_errc::stale_token:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case task_errc::unavailable: code = grpc::StatusCode::UNAVAILABLE; break;
  }
  return {code, std::string{actors::to_string(err.code)} + ": " + err.message};
}

worker_service::worker_service(actors::task_api_ptr tasks,
                               std::shared_ptr<std::atomic<bool>> stopping)
  : tasks_(std::move(tasks)), stopping_(std::move(stopping)) {
  // nop
}

grpc::Status worker_service::Register(grpc::ServerContext* ctx,
                                      const worker::RegisterRequest* req,
                                      worker::RegisterResponse* res) {
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok()) return st;
  actors::worker_registration reg;
  reg.worker_id = req->worker_id();
  reg.queues.assign(req->queues().begin(), req->queues().end());
  reg.max_in_flight = req->max_in_flight();
  for (auto& w : req->workflows())
    reg.workflows.push_back({w.name(), w.format(), w.text()});
  waiter<actors::registration_info> w;
  tasks_->register_worker(std::move(reg), w.callback());
  auto r = w.wait(
    [ctx] {
      return ctx->IsCancelled();
    },
    call_limit);
  if (auto st = status_of(r, "Register"); !st.ok()) return st;
  for (auto& name : r->value->workflows)
    res->add_workflows(name);
  res->set_lease_timeout_ms(r->value->lease_timeout_ms);
  return grpc::Status::OK;
}

grpc::Status worker_service::PollTask(grpc::ServerContext* ctx,
                                      const worker::PollTaskRequest* req,
                                      worker::PollTaskResponse* res) {
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok()) return st;
  if (req->wait_ms() < 0)
    return {grpc::StatusCode::INVALID_ARGUMENT, "wait_ms is negative"};
  auto wait = std::chrono::milliseconds{req->wait_ms()};
  // End the long-poll a little before the client's deadline, so that an
  // empty answer (not DEADLINE_EXCEEDED) reaches it.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    ctx->deadline() - std::chrono::system_clock::now());
  if (left.count() > 0 && left < std::chrono::hours{24}) {
    auto cap = left - std::min(left / 10, std::chrono::milliseconds{200});
    if (wait.count() == 0 || wait > cap)
      wait = std::max(cap, std::chrono::milliseconds{1});
  }
  waiter<std::optional<actors::leased_task>> w;
  auto handle = tasks_->poll(req->worker_id(),
                             {req->queues().begin(), req->queues().end()}, wait,
                             w.callback());
  auto give_up = [&] {
    return ctx->IsCancelled() || (stopping_ && stopping_->load());
  };
  auto r = w.wait(give_up, wait + call_limit);
  if (!r) {
    // The caller went away (or the server stops): end the poll; a task
    // leased to it concurrently is handed back.
    handle.cancel();
    auto late = w.wait(
      [] {
        return false;
      },
      std::chrono::seconds{5});
    if (late && late->value && *late->value)
      tasks_->release(req->worker_id(), (*late->value)->attempt_token);
    return unavailable("PollTask");
  }
  if (r->error) return to_status(*r->error);
  if (*r->value) {
    if (ctx->IsCancelled()) {
      tasks_->release(req->worker_id(), (*r->value)->attempt_token);
      return {grpc::StatusCode::CANCELLED, "the call was cancelled"};
    }
    fill(*res->mutable_task(), **r->value);
  }
  return grpc::Status::OK;
}

grpc::Status worker_service::Heartbeat(grpc::ServerContext* ctx,
                                       const worker::HeartbeatRequest* req,
                                       worker::HeartbeatResponse* res) {
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok()) return st;
  if (auto st = require(req->attempt_token(), "attempt_token"); !st.ok())
    return st;
  waiter<actors::heartbeat_info> w;
  tasks_->heartbeat(req->worker_id(), req->attempt_token(), req->details_json(),
                    w.callback());
  auto r = w.wait(
    [ctx] {
      return ctx->IsCancelled();
    },
    call_limit);
  if (auto st = status_of(r, "Heartbeat"); !st.ok()) return st;
  res->set_lease_expires_at_ms(r->value->lease_expires_at_ms);
  res->set_cancel_requested(r->value->cancel_requested);
  return grpc::Status::OK;
}

grpc::Status
worker_service::CompleteTask(grpc::ServerContext* ctx,
                             const worker::CompleteTaskRequest* req,
                             worker::CompleteTaskResponse* res) {
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok()) return st;
  if (auto st = require(req->attempt_token(), "attempt_token"); !st.ok())
    return st;
  actors::task_outcome outcome;
  switch (req->outcome_case()) {
    case worker::CompleteTaskRequest::kResultJson:
      outcome = actors::task_success{req->result_json()};
      break;
    case worker::CompleteTaskRequest::kError: {
      auto& e = req->error();
      outcome = actors::task_failure{e.kind(), e.message(), e.details_json(),
                                     e.retryable()};
      break;
    }
    case worker::CompleteTaskRequest::kSuspend: {
      auto& s = req->suspend();
      outcome = actors::task_suspend{s.wait_key(), s.sleep_ms(), s.approval(),
                                     s.approval_data_json(),
                                     s.approval_timeout_ms()};
      break;
    }
    default:
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "CompleteTask needs one of result_json, error or suspend"};
  }
  waiter<actors::complete_info> w;
  tasks_->complete(req->worker_id(), req->attempt_token(), std::move(outcome),
                   w.callback());
  // Not abandoned when the caller goes away: the outcome is on its way.
  auto r = w.wait(
    [] {
      return false;
    },
    call_limit);
  (void)ctx;
  if (auto st = status_of(r, "CompleteTask"); !st.ok()) return st;
  res->set_recorded(r->value->recorded);
  return grpc::Status::OK;
}

grpc::Status worker_service::Unregister(grpc::ServerContext* ctx,
                                        const worker::UnregisterRequest* req,
                                        worker::UnregisterResponse* res) {
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok()) return st;
  waiter<std::uint32_t> w;
  tasks_->unregister(req->worker_id(), w.callback());
  auto r = w.wait(
    [ctx] {
      return ctx->IsCancelled();
    },
    call_limit);
  if (auto st = status_of(r, "Unregister"); !st.ok()) return st;
  res->set_requeued(*r->value);
  return grpc::Status::OK;
}

} // namespace cerebelum::api
