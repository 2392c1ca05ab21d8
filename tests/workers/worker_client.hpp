#pragma once

// A gRPC test client of a node: WorkerService and AdminService stubs plus
// small helpers to register, poll, complete and read histories.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "admin.grpc.pb.h"
#include "worker.grpc.pb.h"

namespace cerebelum::test {

class worker_client {
 public:
  explicit worker_client(int port);

  grpc::Status
  register_worker(const std::string& id, std::vector<std::string> queues,
                  const std::string& yaml = {}, std::uint32_t max_in_flight = 1,
                  worker::RegisterResponse* out = nullptr);

  /// Polls once; returns the status and fills `task` (absent: none).
  grpc::Status poll(const std::string& worker,
                    std::optional<worker::Task>& task,
                    std::chrono::milliseconds wait = std::chrono::seconds{5},
                    std::vector<std::string> queues = {});

  /// Polls until a task arrives or `timeout` passes.
  std::optional<worker::Task> poll_until(const std::string& worker,
                                         std::chrono::milliseconds timeout);

  grpc::Status complete(const std::string& worker, const std::string& token,
                        const std::string& result_json,
                        bool* recorded = nullptr);

  grpc::Status fail(const std::string& worker, const std::string& token,
                    const std::string& kind, bool retryable);

  grpc::Status heartbeat(const std::string& worker, const std::string& token,
                         const std::string& details = {},
                         worker::HeartbeatResponse* out = nullptr);

  /// Starts `workflow`; returns the execution id.
  std::string start(const std::string& workflow, const std::string& input_json,
                    const std::string& id = {});

  /// Waits for the end of `id`; returns its info.
  admin::ExecutionInfo wait(const std::string& id,
                            std::chrono::milliseconds timeout);

  admin::ExecutionInfo describe(const std::string& id);

  /// The history of `id`, as events.
  std::vector<events::Event> history(const std::string& id);

  worker::WorkerService::Stub& workers() {
    return *workers_;
  }
  admin::AdminService::Stub& admin() {
    return *admin_;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<worker::WorkerService::Stub> workers_;
  std::unique_ptr<admin::AdminService::Stub> admin_;
};

/// A context with a deadline `d` from now.
std::unique_ptr<grpc::ClientContext>
context_for(std::chrono::milliseconds d = std::chrono::seconds{30});

/// Counts events of `h` with payload `c` (and of step `step` when set).
int count_events(const std::vector<events::Event>& h,
                 events::Event::PayloadCase c, const std::string& step = {});

} // namespace cerebelum::test
