#include "src/bridges/worker_service.hpp"

#include "src/bridges/error_mapping.hpp"
#include "src/bridges/worker_convert.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>

namespace cerebelum::api {

namespace {

grpc::Status unavailable(const char* what) {
  return {grpc::StatusCode::UNAVAILABLE,
          std::string{what} + ": the node did not answer (shutting down?)"};
}

grpc::Status require(const std::string& value, const char* field) {
  if (!value.empty()) return grpc::Status::OK;
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string{field} + " is empty"};
}

/// An engine error (a principal's wait limit) as a status.
grpc::Status engine_status(const caf::error& err) {
  return {
    static_cast<grpc::StatusCode>(grpc_code_of(actors::api_error_code(err))),
    actors::api_error_message(err)};
}

/// Ends a call at once with `status`.
grpc::ServerUnaryReactor* refuse(grpc::CallbackServerContext* ctx,
                                 grpc::Status status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

/// The router's answer finishes the call: `fill` writes a value into the
/// response, an error becomes its status. The call holds no thread while
/// it waits (the facade runs the callback exactly once, with `unavailable`
/// if the router stops). A call the client cancelled is finished the same
/// way (gRPC requires it; the answer goes nowhere). `reactor` is the call's
/// `DefaultReactor()`, which may be asked for only once per call.
template <class T, class Fill>
actors::task_api::callback<T>
finish_with(grpc::ServerUnaryReactor* reactor, Fill fill) {
  return [reactor, fill = std::move(fill)](actors::task_result<T> r) {
    if (r.error) {
      reactor->Finish(to_status(*r.error));
      return;
    }
    fill(*r.value);
    reactor->Finish(grpc::Status::OK);
  };
}

} // namespace

worker_service::worker_service(actors::task_api_ptr tasks,
                               authenticator_ptr auth, worker_owners_ptr owners,
                               principal_waits_ptr waits)
  : auth_(std::move(auth)),
    owners_(owners ? std::move(owners)
                   : std::make_shared<auth::worker_owners>()),
    waits_(std::move(waits)),
    tasks_(std::move(tasks)) {
  // nop
}

worker_service::caller
worker_service::admit(grpc::CallbackServerContext* ctx, const char* method,
                      const std::string& worker,
                      std::span<const std::string> queues, bool claim) {
  caller out;
  if (!auth_) return out;
  auto v = check_call(auth_, ctx, method, {{}, queues});
  if (!v.ok()) {
    out.status = {v.result == auth::verdict::outcome::unauthenticated
                    ? grpc::StatusCode::UNAUTHENTICATED
                    : grpc::StatusCode::PERMISSION_DENIED,
                  v.message};
    return out;
  }
  out.identity = auth::worker_identity(*v.who);
  out.principal = v.who->name;
  out.may_replace = auth::allows(v.who->r, auth::permission::ownership);
  if (worker.empty()) return out; // refused by the caller
  if (auto why = owners_->admit(worker, *v.who, claim))
    out.status = {grpc::StatusCode::PERMISSION_DENIED, *why};
  return out;
}

grpc::ServerUnaryReactor*
worker_service::Register(grpc::CallbackServerContext* ctx,
                         const worker::RegisterRequest* req,
                         worker::RegisterResponse* res) {
  std::vector<std::string> queues{req->queues().begin(), req->queues().end()};
  auto who = admit(ctx, "WorkerService/Register", req->worker_id(), queues,
                   true);
  if (!who.ok()) return refuse(ctx, who.status);
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok())
    return refuse(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  auto reg = to_registration(*req);
  reg.identity = std::move(who.identity);
  reg.may_replace = who.may_replace;
  tasks_->register_worker(
    std::move(reg), finish_with<actors::registration_info>(
                      reactor, [res](const actors::registration_info& info) {
                        *res = to_proto(info);
                      }));
  return reactor;
}

/// One long-poll: asks the router for a task and finishes the call with its
/// answer. The caller's cancellation ends the poll (the router's answer then
/// finishes the call); the server's stop finishes the call at once, without
/// waiting for the router, which may be stopping too. It deletes itself once
/// gRPC is done with the call and the router's answer has come; it counts
/// as a waiting request of its principal until then.
class worker_service::poll_reactor final : public grpc::ServerUnaryReactor {
 public:
  poll_reactor(worker_service* svc, std::string worker,
               worker::PollTaskResponse* res, principal_waits::ticket held)
    : svc_(svc),
      tasks_(svc->tasks_),
      worker_(std::move(worker)),
      res_(res),
      held_(std::move(held)) {
    // nop
  }

  /// Starts the poll; the router's answer finishes the call.
  void start(std::vector<std::string> queues, std::chrono::milliseconds wait) {
    auto handle = tasks_->poll(
      worker_, std::move(queues), wait,
      [this](actors::task_result<std::optional<actors::leased_task>> r) {
        answered(std::move(r));
      });
    std::optional<grpc::Status> finish;
    bool cancel = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      handle_ = handle;
      started_ = true;
      if (answered_) {
        finish = status_;
      } else {
        std::lock_guard<std::mutex> polls_guard{svc_->polls_mtx_};
        if (svc_->polls_stopped_) {
          stopping_ = finished_ = true;
          finish = unavailable("PollTask");
        } else {
          svc_->polls_.emplace(handle.id(), this);
        }
        cancel = stopping_ || cancelled_;
      }
    }
    // `handle` is a copy: this reactor may be gone once the call finished.
    if (cancel) handle.cancel();
    if (finish) Finish(*finish);
  }

  /// The caller went away: end the poll; its answer finishes the call.
  void OnCancel() override {
    actors::poll_handle handle;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      cancelled_ = true;
      handle = handle_;
    }
    handle.cancel();
  }

  void OnDone() override {
    release();
  }

  /// Keeps this reactor alive until the matching `stop` (see stop_polls).
  void hold() {
    refs_.fetch_add(1);
  }

  /// The server stops: finishes the call now with UNAVAILABLE and ends the
  /// poll; a task the router leased meanwhile is handed back when its answer
  /// comes. Releases the `hold`.
  void stop() {
    actors::poll_handle handle;
    bool finish = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
      handle = handle_;
      finish = started_ && !finished_;
      if (finish) finished_ = true;
    }
    handle.cancel();
    if (finish) Finish(unavailable("PollTask"));
    release();
  }

 private:
  void answered(actors::task_result<std::optional<actors::leased_task>> r) {
    grpc::Status status;
    bool finish = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      // Once stopped, the service may be gone: it is not touched again.
      if (!stopping_) {
        std::lock_guard<std::mutex> polls_guard{svc_->polls_mtx_};
        if (started_) svc_->polls_.erase(handle_.id());
        if (svc_->polls_stopped_) stopping_ = true;
      }
      answered_ = true;
      bool has_task = r.value && *r.value;
      if (finished_ || cancelled_ || stopping_) {
        // A task leased concurrently never reaches the caller: hand it
        // back.
        if (has_task) tasks_->release(worker_, (*r.value)->attempt_token);
        status = cancelled_ ? grpc::Status{grpc::StatusCode::CANCELLED,
                                           "the call was cancelled"}
                            : unavailable("PollTask");
      } else if (r.error) {
        status = to_status(*r.error);
      } else if (has_task) {
        *res_->mutable_task() = to_proto(**r.value);
      }
      if (!finished_) {
        finished_ = true;
        // Answered before `start` returned: `start` finishes the call.
        if (started_)
          finish = true;
        else
          status_ = status;
      }
    }
    // gRPC may delete this reactor (OnDone) once the call is finished.
    if (finish) Finish(status);
    release();
  }

  /// Two owners: gRPC (until OnDone) and the router's answer; `hold` adds
  /// one for the server's stop.
  void release() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  worker_service* svc_;
  actors::task_api_ptr tasks_;
  std::string worker_;
  worker::PollTaskResponse* res_;
  principal_waits::ticket held_;
  std::atomic<int> refs_{2};
  std::mutex mtx_;
  actors::poll_handle handle_;
  bool started_ = false;
  /// The router's answer came.
  bool answered_ = false;
  /// Finish was called or is left to `start`.
  bool finished_ = false;
  grpc::Status status_;
  bool cancelled_ = false;
  bool stopping_ = false;
};

grpc::ServerUnaryReactor*
worker_service::PollTask(grpc::CallbackServerContext* ctx,
                         const worker::PollTaskRequest* req,
                         worker::PollTaskResponse* res) {
  std::vector<std::string> queues{req->queues().begin(), req->queues().end()};
  auto who = admit(ctx, "WorkerService/PollTask", req->worker_id(), queues,
                   false);
  if (!who.ok()) return refuse(ctx, who.status);
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok())
    return refuse(ctx, st);
  if (req->wait_ms() < 0)
    return refuse(ctx,
                  {grpc::StatusCode::INVALID_ARGUMENT, "wait_ms is negative"});
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
  principal_waits::ticket held;
  if (waits_) {
    auto counted = waits_->admit(who.principal);
    if (!counted) return refuse(ctx, engine_status(counted.error()));
    held = std::move(*counted);
  }
  auto* reactor = new poll_reactor(this, req->worker_id(), res,
                                   std::move(held));
  reactor->start(std::move(queues), wait);
  return reactor;
}

void worker_service::stop_polls() {
  std::vector<poll_reactor*> pending;
  {
    // A reactor in `polls_` is alive: it leaves it before its last release.
    std::lock_guard<std::mutex> guard{polls_mtx_};
    polls_stopped_ = true;
    for (auto& [id, reactor] : polls_) {
      reactor->hold();
      pending.push_back(reactor);
    }
    polls_.clear();
  }
  for (auto* reactor : pending)
    reactor->stop();
}

grpc::ServerUnaryReactor*
worker_service::Heartbeat(grpc::CallbackServerContext* ctx,
                          const worker::HeartbeatRequest* req,
                          worker::HeartbeatResponse* res) {
  if (auto who = admit(ctx, "WorkerService/Heartbeat", req->worker_id(), {},
                       false);
      !who.ok())
    return refuse(ctx, who.status);
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok())
    return refuse(ctx, st);
  if (auto st = require(req->attempt_token(), "attempt_token"); !st.ok())
    return refuse(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  tasks_->heartbeat(req->worker_id(), req->attempt_token(), req->details_json(),
                    finish_with<actors::heartbeat_info>(
                      reactor, [res](const actors::heartbeat_info& info) {
                        *res = to_proto(info);
                      }));
  return reactor;
}

grpc::ServerUnaryReactor*
worker_service::CompleteTask(grpc::CallbackServerContext* ctx,
                             const worker::CompleteTaskRequest* req,
                             worker::CompleteTaskResponse* res) {
  if (auto who = admit(ctx, "WorkerService/CompleteTask", req->worker_id(), {},
                       false);
      !who.ok())
    return refuse(ctx, who.status);
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok())
    return refuse(ctx, st);
  if (auto st = require(req->attempt_token(), "attempt_token"); !st.ok())
    return refuse(ctx, st);
  auto outcome = to_outcome(*req);
  if (!outcome) return refuse(ctx, to_status(*outcome.error));
  auto* reactor = ctx->DefaultReactor();
  // A caller that goes away does not withdraw the outcome: it is on its way
  // to the execution either way. A next task leased for a caller that went
  // away is handed back.
  tasks_->complete(req->worker_id(), req->attempt_token(),
                   std::move(*outcome.value),
                   finish_with<actors::complete_info>(
                     reactor,
                     [ctx, res, tasks = tasks_, worker = req->worker_id()](
                       const actors::complete_info& info) {
                       *res = to_proto(info);
                       if (info.next && ctx->IsCancelled()) {
                         tasks->release(worker, info.next->attempt_token);
                         res->clear_next_task();
                       }
                     }),
                   req->want_next());
  return reactor;
}

grpc::ServerUnaryReactor*
worker_service::Unregister(grpc::CallbackServerContext* ctx,
                           const worker::UnregisterRequest* req,
                           worker::UnregisterResponse* res) {
  if (auto who = admit(ctx, "WorkerService/Unregister", req->worker_id(), {},
                       false);
      !who.ok())
    return refuse(ctx, who.status);
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok())
    return refuse(ctx, st);
  auto* reactor = ctx->DefaultReactor();
  tasks_->unregister(req->worker_id(),
                     finish_with<std::uint32_t>(
                       reactor,
                       [this, res, worker = req->worker_id()](std::uint32_t n) {
                         *res = unregistered(n);
                         owners_->release(worker);
                       }));
  return reactor;
}

} // namespace cerebelum::api
