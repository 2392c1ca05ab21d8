#include "src/bridges/worker_service.hpp"

#include "src/bridges/worker_convert.hpp"

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

grpc::Status require(const std::string& value, const char* field) {
  if (!value.empty()) return grpc::Status::OK;
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string{field} + " is empty"};
}

/// Longest time a unary call waits for the router (commit included).
constexpr auto call_limit = std::chrono::milliseconds{60'000};

} // namespace

worker_service::worker_service(actors::task_api_ptr tasks)
  : tasks_(std::move(tasks)) {
  // nop
}

grpc::Status worker_service::Register(grpc::ServerContext* ctx,
                                      const worker::RegisterRequest* req,
                                      worker::RegisterResponse* res) {
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok()) return st;
  waiter<actors::registration_info> w;
  tasks_->register_worker(to_registration(*req), w.callback());
  auto r = w.wait(
    [ctx] {
      return ctx->IsCancelled();
    },
    call_limit);
  if (auto st = status_of(r, "Register"); !st.ok()) return st;
  *res = to_proto(*r->value);
  return grpc::Status::OK;
}

/// One long-poll: asks the router for a task and finishes the call with its
/// answer, or ends the poll when the call is cancelled. It deletes itself
/// once gRPC is done with the call.
class worker_service::poll_reactor final : public grpc::ServerUnaryReactor {
 public:
  poll_reactor(worker_service* svc, std::string worker,
               worker::PollTaskResponse* res)
    : svc_(svc), worker_(std::move(worker)), res_(res) {
    // nop
  }

  /// Starts the poll; the router's answer finishes the call.
  void start(std::vector<std::string> queues, std::chrono::milliseconds wait) {
    auto handle = svc_->tasks_->poll(
      worker_, std::move(queues), wait,
      [this](actors::task_result<std::optional<actors::leased_task>> r) {
        answered(std::move(r));
      });
    bool stop = false;
    std::optional<grpc::Status> early;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      handle_ = handle;
      started_ = true;
      if (done_) {
        early = status_;
      } else {
        std::lock_guard<std::mutex> polls_guard{svc_->polls_mtx_};
        if (svc_->polls_stopped_)
          stopping_ = true;
        else
          svc_->polls_.emplace(handle.id(), handle);
        stop = stopping_ || cancelled_;
      }
    }
    if (early) {
      Finish(*early);
      return;
    }
    // `handle` is a copy: this reactor may be gone once the poll ended.
    if (stop) handle.cancel();
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
    delete this;
  }

 private:
  void answered(actors::task_result<std::optional<actors::leased_task>> r) {
    grpc::Status status;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      {
        std::lock_guard<std::mutex> polls_guard{svc_->polls_mtx_};
        if (started_) svc_->polls_.erase(handle_.id());
        if (svc_->polls_stopped_) stopping_ = true;
      }
      bool has_task = r.value && *r.value;
      if (cancelled_ || stopping_) {
        // A task leased concurrently never reaches the caller: hand it
        // back.
        if (has_task) svc_->tasks_->release(worker_, (*r.value)->attempt_token);
        status = cancelled_ ? grpc::Status{grpc::StatusCode::CANCELLED,
                                           "the call was cancelled"}
                            : unavailable("PollTask");
      } else if (r.error) {
        status = to_status(*r.error);
      } else if (has_task) {
        *res_->mutable_task() = to_proto(**r.value);
      }
      done_ = true;
      if (!started_) {
        // Answered before `start` returned: `start` finishes the call.
        status_ = status;
        return;
      }
    }
    // Last: gRPC may delete this reactor (OnDone) right after.
    Finish(status);
  }

  worker_service* svc_;
  std::string worker_;
  worker::PollTaskResponse* res_;
  std::mutex mtx_;
  actors::poll_handle handle_;
  bool started_ = false;
  bool done_ = false;
  grpc::Status status_;
  bool cancelled_ = false;
  bool stopping_ = false;
};

grpc::ServerUnaryReactor*
worker_service::PollTask(grpc::CallbackServerContext* ctx,
                         const worker::PollTaskRequest* req,
                         worker::PollTaskResponse* res) {
  auto refuse = [ctx](grpc::Status status) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(std::move(status));
    return reactor;
  };
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok())
    return refuse(st);
  if (req->wait_ms() < 0)
    return refuse({grpc::StatusCode::INVALID_ARGUMENT, "wait_ms is negative"});
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
  auto* reactor = new poll_reactor(this, req->worker_id(), res);
  reactor->start({req->queues().begin(), req->queues().end()}, wait);
  return reactor;
}

void worker_service::stop_polls() {
  std::map<std::uint64_t, actors::poll_handle> pending;
  {
    std::lock_guard<std::mutex> guard{polls_mtx_};
    polls_stopped_ = true;
    pending.swap(polls_);
  }
  for (auto& [id, handle] : pending)
    handle.cancel();
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
  *res = to_proto(*r->value);
  return grpc::Status::OK;
}

grpc::Status
worker_service::CompleteTask(grpc::ServerContext* ctx,
                             const worker::CompleteTaskRequest* req,
                             worker::CompleteTaskResponse* res) {
  if (auto st = require(req->worker_id(), "worker_id"); !st.ok()) return st;
  if (auto st = require(req->attempt_token(), "attempt_token"); !st.ok())
    return st;
  auto outcome = to_outcome(*req);
  if (!outcome) return to_status(*outcome.error);
  waiter<actors::complete_info> w;
  tasks_->complete(req->worker_id(), req->attempt_token(),
                   std::move(*outcome.value), w.callback());
  // Not abandoned when the caller goes away: the outcome is on its way.
  auto r = w.wait(
    [] {
      return false;
    },
    call_limit);
  (void)ctx;
  if (auto st = status_of(r, "CompleteTask"); !st.ok()) return st;
  *res = to_proto(*r->value);
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
  *res = unregistered(*r->value);
  return grpc::Status::OK;
}

} // namespace cerebelum::api
