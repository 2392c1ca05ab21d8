#pragma once

// The gRPC WorkerService (proto/worker.proto) over the task router's facade
// (actors/task_api.hpp); the messages convert in worker_convert.hpp.
// Included only by the gRPC server and its tests.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>

#include "actors/task_api.hpp"
#include "src/bridges/auth_gate.hpp"
#include "src/bridges/principal_waits.hpp"
#include "worker.grpc.pb.h"

namespace cerebelum::api {

/// Implements every WorkerService RPC by calling `task_api`, mapping task
/// errors to the statuses of worker.proto. Every method is a callback
/// method: a call holds no thread and wakes nothing while it waits for the
/// router (a long-poll for a task, a completion for its commit); the
/// router's answer, or a long-poll's cancellation, finishes it.
class worker_service final : public worker::WorkerService::CallbackService {
 public:
  /// `auth`, when set, checks every call's token (src/auth) and binds each
  /// worker id to the token that registered it (in `owners`, shared with
  /// the CAF port; a map of its own when null). `waits`, when set, counts
  /// each principal's pending PollTask calls and refuses those beyond its
  /// limit (RESOURCE_EXHAUSTED).
  explicit worker_service(actors::task_api_ptr tasks,
                          authenticator_ptr auth = nullptr,
                          worker_owners_ptr owners = nullptr,
                          principal_waits_ptr waits = nullptr);

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx,
                                     const worker::RegisterRequest* req,
                                     worker::RegisterResponse* res) override;

  grpc::ServerUnaryReactor* PollTask(grpc::CallbackServerContext* ctx,
                                     const worker::PollTaskRequest* req,
                                     worker::PollTaskResponse* res) override;

  /// Ends every pending long-poll at once with UNAVAILABLE (server
  /// shutdown); later polls end the same way.
  void stop_polls();

  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const worker::HeartbeatRequest* req,
                                      worker::HeartbeatResponse* res) override;

  grpc::ServerUnaryReactor*
  CompleteTask(grpc::CallbackServerContext* ctx,
               const worker::CompleteTaskRequest* req,
               worker::CompleteTaskResponse* res) override;

  grpc::ServerUnaryReactor*
  Unregister(grpc::CallbackServerContext* ctx,
             const worker::UnregisterRequest* req,
             worker::UnregisterResponse* res) override;

 private:
  /// Who called, once `admit` let the call through.
  struct caller {
    /// OK or the refusal.
    grpc::Status status;
    /// The caller's worker identity (auth::worker_identity; "" without
    /// tokens).
    std::string identity;
    /// The token's principal ("" without tokens).
    std::string principal;
    /// The principal may replace workflow owners (auth::permission
    /// ownership).
    bool may_replace = false;

    [[nodiscard]] bool ok() const {
      return status.ok();
    }
  };

  /// Checks the token of a call of `method` about worker `worker` (and
  /// `queues`): a worker id belongs to the token that registered it first;
  /// `claim` (Register) binds an unbound one.
  caller admit(grpc::CallbackServerContext* ctx, const char* method,
               const std::string& worker, std::span<const std::string> queues,
               bool claim);

  authenticator_ptr auth_;
  worker_owners_ptr owners_;
  principal_waits_ptr waits_;
  class poll_reactor;
  friend class poll_reactor;

  actors::task_api_ptr tasks_;
  /// Pending long-polls (ended by stop_polls).
  std::mutex polls_mtx_;
  std::map<std::uint64_t, poll_reactor*> polls_;
  bool polls_stopped_ = false;
};

} // namespace cerebelum::api
