#pragma once

// The gRPC WorkerService (proto/worker.proto) over the task router's facade
// (actors/task_api.hpp); the messages convert in worker_convert.hpp.
// Included only by the gRPC server and its tests.

#include <atomic>
#include <memory>

#include "actors/task_api.hpp"
#include "worker.grpc.pb.h"

namespace cerebelum::api {

/// Implements every WorkerService RPC by calling `task_api` and waiting for
/// its callback, mapping task errors to the statuses of worker.proto.
class worker_service final : public worker::WorkerService::Service {
 public:
  /// `stopping`, when set, ends pending long-polls early (server shutdown).
  explicit worker_service(actors::task_api_ptr tasks,
                          std::shared_ptr<std::atomic<bool>> stopping = {});

  grpc::Status Register(grpc::ServerContext* ctx,
                        const worker::RegisterRequest* req,
                        worker::RegisterResponse* res) override;

  grpc::Status PollTask(grpc::ServerContext* ctx,
                        const worker::PollTaskRequest* req,
                        worker::PollTaskResponse* res) override;

  grpc::Status Heartbeat(grpc::ServerContext* ctx,
                         const worker::HeartbeatRequest* req,
                         worker::HeartbeatResponse* res) override;

  grpc::Status CompleteTask(grpc::ServerContext* ctx,
                            const worker::CompleteTaskRequest* req,
                            worker::CompleteTaskResponse* res) override;

  grpc::Status Unregister(grpc::ServerContext* ctx,
                          const worker::UnregisterRequest* req,
                          worker::UnregisterResponse* res) override;

 private:
  actors::task_api_ptr tasks_;
  std::shared_ptr<std::atomic<bool>> stopping_;
};

} // namespace cerebelum::api
