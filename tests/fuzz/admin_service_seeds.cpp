// Writes the seed corpus of admin_service_fuzz: a valid request of each
// AdminService RPC, with and without tokens (the header bytes
// admin_service_fuzz.cpp reads: flags, RPC, token, answers), as the CLI's
// commands send them. Built only with -DCEREBELUM_FUZZ_SEED_TOOLS=ON; run
// once:
//   admin_service_seeds tests/fuzz/corpus/admin_service
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "admin.pb.h"

using namespace cerebelum;

namespace {

std::string dir;

/// Token choices of admin_service_fuzz.cpp.
enum token : std::uint8_t {
  none = 0,
  admin_token = 1,
  operator_token = 2,
  starter_token = 3,
  reader_token = 4,
  scoped_token = 6,
  scoped2_token = 7,
  expired_token = 8,
};

/// One seed: the RPC's index in the service, the token, 24 answer bytes
/// that pick success (0x31), then the request.
void write(const std::string& name, bool tokens, int rpc, token t,
           const google::protobuf::Message& req) {
  std::string bytes;
  bytes += static_cast<char>(tokens ? 1 : 0);
  bytes += static_cast<char>(rpc);
  bytes += static_cast<char>(t);
  bytes += static_cast<char>(24);
  bytes += std::string(24, '1');
  bytes += req.SerializeAsString();
  std::ofstream{dir + "/" + name, std::ios::binary} << bytes;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: admin_service_seeds DIR\n");
    return 2;
  }
  dir = argv[1];
  admin::StartExecutionRequest start;
  start.set_workflow("order");
  start.set_input_json(R"({"order_id": "o-7", "amount": 1500})");
  start.set_execution_id("o-7");
  start.set_started_by("alice");
  write("start", false, 0, none, start);
  write("start_tokens", true, 0, none, start);
  admin::DescribeExecutionRequest describe;
  describe.set_execution_id("o-7");
  write("describe", false, 1, none, describe);
  write("describe_scoped", true, 1, scoped_token, describe);
  admin::ListExecutionsRequest list;
  list.set_status("awaiting_approval");
  list.set_workflow("order");
  list.set_page_size(20);
  list.set_created_from_ms(1'700'000'000'000);
  write("list", false, 2, none, list);
  write("list_scoped2", true, 2, scoped2_token, list);
  admin::GetHistoryRequest history;
  history.set_execution_id("o-7");
  history.set_from_seq(2);
  write("history", false, 3, none, history);
  write("history_reader", true, 3, reader_token, history);
  admin::FollowExecutionRequest follow;
  follow.set_execution_id("o-7");
  write("follow", false, 4, none, follow);
  admin::ApproveRequest approve;
  approve.set_execution_id("o-7");
  approve.set_by("alice");
  approve.set_data_json(R"({"note": "ok"})");
  write("approve", false, 5, none, approve);
  write("approve_operator", true, 5, operator_token, approve);
  write("approve_reader", true, 5, reader_token, approve);
  admin::RejectRequest reject;
  reject.set_execution_id("o-7");
  reject.set_by("bob");
  reject.set_reason("no stock");
  write("reject", false, 6, none, reject);
  write("reject_scoped", true, 6, scoped_token, reject);
  admin::CancelRequest cancel;
  cancel.set_execution_id("o-7");
  cancel.set_reason("duplicate");
  write("cancel", false, 7, none, cancel);
  write("cancel_expired", true, 7, expired_token, cancel);
  admin::WaitForResultRequest wait;
  wait.set_execution_id("o-7");
  wait.set_timeout_ms(5000);
  write("wait", false, 8, none, wait);
  write("workflows", false, 9, none, admin::ListWorkflowsRequest{});
  write("workflows_scoped2", true, 9, scoped2_token,
        admin::ListWorkflowsRequest{});
  admin::ListDeadLettersRequest dead;
  dead.set_queue("billing");
  dead.set_page_size(10);
  write("dead_letters", true, 10, admin_token, dead);
  admin::RetryDeadLetterRequest retry;
  retry.set_id(1);
  retry.set_by("alice");
  write("retry", false, 11, none, retry);
  write("health", true, 12, none, admin::HealthRequest{});
  admin::CheckUpgradeRequest upgrade;
  upgrade.set_definition("name: order\nsteps:\n  - name: a\n    set: {x: 1}\n");
  upgrade.set_file("order.yaml");
  upgrade.set_migrate(true);
  upgrade.set_by("alice");
  write("check_upgrade", false, 13, none, upgrade);
  write("check_upgrade_admin", true, 13, admin_token, upgrade);
  admin::CreateTokenRequest create;
  create.set_name("ci-runner");
  create.set_role("reader");
  create.add_workflows("order");
  create.set_cert_subject("CN=ci-runner,O=Example");
  write("create_token_cert", true, 14, admin_token, create);
  write("create_token_open", false, 14, none, create);
  create.clear_cert_subject();
  create.set_expires_in_ms(86'400'000);
  write("create_token_starter", true, 14, starter_token, create);
  write("list_tokens", true, 15, admin_token, admin::ListTokensRequest{});
  admin::RevokeTokenRequest revoke;
  revoke.set_id("5f1c0e9a3b7d2c41");
  write("revoke_token", true, 16, admin_token, revoke);
  admin::GetWorkflowOwnerRequest owner;
  owner.set_name("order");
  write("workflow_owner", true, 17, admin_token, owner);
  write("workflow_owner_open", false, 17, none, owner);
  write("workflow_owner_reader", true, 17, reader_token, owner);
  admin::TransferWorkflowRequest transfer;
  transfer.set_name("order");
  transfer.set_to("worker");
  write("transfer_workflow", true, 18, admin_token, transfer);
  write("transfer_workflow_scoped", true, 18, scoped_token, transfer);
  return 0;
}
