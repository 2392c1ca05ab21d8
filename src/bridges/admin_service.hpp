#pragma once

// The gRPC AdminService (proto/admin.proto) over the engine's operations.
// Included only by the gRPC server and its tests: it pulls in gRPC headers.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/engine_api.hpp"
#include "actors/task_api.hpp"
#include "admin.grpc.pb.h"
#include "src/bridges/auth_gate.hpp"
#include "src/bridges/principal_waits.hpp"

namespace cerebelum::api {

/// Implements every AdminService RPC by calling `engine_api` (which blocks),
/// mapping engine errors to the status codes documented in admin.proto.
class admin_service final
  : public admin::AdminService::WithCallbackMethod_StartExecution<
      admin::AdminService::WithCallbackMethod_WaitForResult<
        admin::AdminService::WithCallbackMethod_FollowExecution<
          admin::AdminService::Service>>> {
 public:
  /// `tasks`, when set, serves the dead letter RPCs (else UNIMPLEMENTED).
  /// Pending waits end when the server shuts down (their calls are
  /// cancelled).
  /// `auth`, when set, checks every call's token (src/auth); without it
  /// every call is allowed and the token RPCs are refused. `waits`, when
  /// set, counts each principal's WaitForResult and FollowExecution calls
  /// and refuses those beyond its limit (RESOURCE_EXHAUSTED).
  explicit admin_service(std::shared_ptr<actors::engine_api> engine,
                         actors::task_api_ptr tasks = nullptr,
                         authenticator_ptr auth = nullptr,
                         std::vector<std::string> warnings = {},
                         principal_waits_ptr waits = nullptr);

  /// A callback method: the start's commit is awaited holding no thread
  /// (engine_api::start_async).
  grpc::ServerUnaryReactor*
  StartExecution(grpc::CallbackServerContext* ctx,
                 const admin::StartExecutionRequest* req,
                 admin::StartExecutionResponse* res) override;

  grpc::Status DescribeExecution(grpc::ServerContext* ctx,
                                 const admin::DescribeExecutionRequest* req,
                                 admin::ExecutionInfo* res) override;

  grpc::Status ListExecutions(grpc::ServerContext* ctx,
                              const admin::ListExecutionsRequest* req,
                              admin::ListExecutionsResponse* res) override;

  grpc::Status GetHistory(grpc::ServerContext* ctx,
                          const admin::GetHistoryRequest* req,
                          admin::GetHistoryResponse* res) override;

  grpc::Status Approve(grpc::ServerContext* ctx,
                       const admin::ApproveRequest* req,
                       admin::ExecutionInfo* res) override;

  grpc::Status Reject(grpc::ServerContext* ctx, const admin::RejectRequest* req,
                      admin::ExecutionInfo* res) override;

  grpc::Status Cancel(grpc::ServerContext* ctx, const admin::CancelRequest* req,
                      admin::ExecutionInfo* res) override;

  /// A callback method: a wait holds no thread (engine_api::wait_async);
  /// the execution's end, the deadline, or the caller going away (also at
  /// server shutdown) finishes it.
  grpc::ServerUnaryReactor*
  WaitForResult(grpc::CallbackServerContext* ctx,
                const admin::WaitForResultRequest* req,
                admin::ExecutionInfo* res) override;

  /// A callback method: the stream of engine_api::follow, written one
  /// event at a time as the client takes them; no thread held between.
  grpc::ServerWriteReactor<events::Event>*
  FollowExecution(grpc::CallbackServerContext* ctx,
                  const admin::FollowExecutionRequest* req) override;

  grpc::Status ListWorkflows(grpc::ServerContext* ctx,
                             const admin::ListWorkflowsRequest* req,
                             admin::ListWorkflowsResponse* res) override;

  grpc::Status Health(grpc::ServerContext* ctx, const admin::HealthRequest* req,
                      admin::HealthResponse* res) override;
  grpc::Status CheckUpgrade(grpc::ServerContext* ctx,
                            const admin::CheckUpgradeRequest* req,
                            admin::CheckUpgradeResponse* res) override;

  grpc::Status CreateToken(grpc::ServerContext* ctx,
                           const admin::CreateTokenRequest* req,
                           admin::CreateTokenResponse* res) override;

  grpc::Status ListTokens(grpc::ServerContext* ctx,
                          const admin::ListTokensRequest* req,
                          admin::ListTokensResponse* res) override;

  grpc::Status RevokeToken(grpc::ServerContext* ctx,
                           const admin::RevokeTokenRequest* req,
                           admin::TokenInfo* res) override;

  grpc::Status GetWorkflowOwner(grpc::ServerContext* ctx,
                                const admin::GetWorkflowOwnerRequest* req,
                                admin::WorkflowOwner* res) override;

  grpc::Status TransferWorkflow(grpc::ServerContext* ctx,
                                const admin::TransferWorkflowRequest* req,
                                admin::WorkflowOwner* res) override;

  grpc::Status ListDeadLetters(grpc::ServerContext* ctx,
                               const admin::ListDeadLettersRequest* req,
                               admin::ListDeadLettersResponse* res) override;

  grpc::Status RetryDeadLetter(grpc::ServerContext* ctx,
                               const admin::RetryDeadLetterRequest* req,
                               admin::ExecutionInfo* res) override;

 private:
  std::shared_ptr<actors::engine_api> engine_;
  actors::task_api_ptr tasks_;
  std::optional<grpc::Status>
  tokens_unavailable(eventstore::event_store*& store) const;

  authenticator_ptr auth_;
  std::vector<std::string> warnings_;
  principal_waits_ptr waits_;
};

/// Converts an engine error into a gRPC status with its message.
grpc::Status to_status(const caf::error& err);

} // namespace cerebelum::api
