#pragma once

// The gRPC WorkerService (proto/worker.proto) over the task router's facade
// (actors/task_api.hpp); the messages convert in worker_convert.hpp.
// Included only by the gRPC server and its tests.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "actors/task_api.hpp"
#include "worker.grpc.pb.h"

namespace cerebelum::api {

/// Implements every WorkerService RPC by calling `task_api`, mapping task
/// errors to the statuses of worker.proto. Every method is a callback
/// method: a call holds no thread and wakes nothing while it waits for the
/// router (a long-poll for a task, a completion for its commit); the
/// router's answer, or a long-poll's cancellation, finishes it.
class worker_service final : public worker::WorkerService::CallbackService {
 public:
  explicit worker_service(actors::task_api_ptr tasks);

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
  class poll_reactor;
  friend class poll_reactor;

  actors::task_api_ptr tasks_;
  /// Pending long-polls (ended by stop_polls).
  std::mutex polls_mtx_;
  std::map<std::uint64_t, poll_reactor*> polls_;
  bool polls_stopped_ = false;
};

} // namespace cerebelum::api
