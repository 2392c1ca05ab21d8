// Fuzzes the gRPC AdminService's handlers (src/bridges/admin_service.cpp):
// each RPC's request message is decoded from the input's bytes (protobuf's
// ParseFromArray, as gRPC decodes a call's message) and handed to the real
// handler, with `fuzz_engine` behind it (tests/fuzz/fuzz_engine.hpp):
// every call recorded, answers drawn from the input.
//
// Input:
//
//   byte 0    bit 0: the service has an authenticator (tokens on)
//   byte 1    the RPC (its index in admin.proto's service, modulo 17)
//   byte 2    the token a synchronous call sends as `authorization`
//             metadata: none, admin, operator, starter, reader, worker,
//             scoped, scoped2, expired, revoked, wrong, not a token
//   byte 3    n, then n bytes: the engine's answers, drawn in order
//   the rest  the request message
//
// Without a server: the synchronous methods get a plain grpc::ServerContext
// whose client metadata gRPC's own test header
// (grpcpp/test/server_context_test_spouse.h) fills; the callback methods
// (StartExecution, WaitForResult, FollowExecution) get a
// CallbackServerContext whose default reactor gRPC's test peer takes
// (grpcpp/test/default_reactor_test_peer.h), and the reactors they make are
// bound to a call of this file that takes their Finish and writes (a
// stream's writes are completed one at a time, as gRPC does). Metadata
// cannot be put in a CallbackServerContext: with tokens on, the callback
// methods are reached only without a token (they must refuse). The dead
// letter RPCs need the task router (a CAF actor): the service runs without
// one and they must answer UNIMPLEMENTED once allowed.
//
// Checked: every status code is one admin.proto documents (INTERNAL only
// after the engine answered an internal error); every response and
// streamed event serializes and parses back; the JSON texts of an
// execution are JSON; with tokens: no engine call and no change of the
// token store for a call the permission table refuses (UNAUTHENTICATED
// without a valid token, PERMISSION_DENIED for the role), every recorded
// `by` is the principal's name, a scoped principal touches only
// executions of its scope; without tokens the token RPCs are refused.
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/test/default_reactor_test_peer.h>
#include <grpcpp/test/server_context_test_spouse.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/auth/permissions.hpp"
#include "src/bridges/admin_service.hpp"
#include "tests/fuzz/fuzz_engine.hpp"

using namespace cerebelum;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "admin_service invariant broken: %s\n", what.c_str());
  std::abort();
}

struct world {
  fuzz::answer_bytes in;
  fuzz::fuzz_store store{in};
  std::shared_ptr<fuzz::fuzz_engine> engine
    = std::make_shared<fuzz::fuzz_engine>(in, &store);
  std::shared_ptr<auth::authenticator> auth
    = std::make_shared<auth::authenticator>(
      [this] {
        return &store;
      },
      [] {
        return fuzz::fuzz_now_ms;
      });
  fuzz::fuzz_tokens tokens = fuzz::make_fuzz_tokens(store, *auth);
  std::map<std::string, eventstore::token_row> stored = store.snapshot();
  std::shared_ptr<api::principal_waits> waits
    = std::make_shared<api::principal_waits>(2);
  api::admin_service open_service{engine, nullptr, nullptr, {"fuzz"}, waits};
  api::admin_service token_service{engine, nullptr, auth, {"fuzz"}, waits};
};

world& the_world() {
  static world w;
  return w;
}

/// A call of a unary callback method: takes the reactor's Finish.
class unary_call final : public grpc::ServerCallbackUnary {
 public:
  void bind(grpc::ServerUnaryReactor* r) {
    reactor_ = r;
    BindReactor(r);
  }
  void Finish(grpc::Status s) override {
    if (status) fail("a unary call finished twice");
    status = std::move(s);
  }
  void SendInitialMetadata() override {
    // nop: no metadata is sent anywhere
  }
  std::optional<grpc::Status> status;

 private:
  grpc::internal::ServerReactor* reactor() override {
    return reactor_;
  }
  void CallOnDone() override {
    // nop: the harness calls OnDone itself
  }
  grpc::ServerUnaryReactor* reactor_ = nullptr;
};

/// A call of FollowExecution: each write is taken (serialized at once, as
/// gRPC does) and completed by `pump`, never from within the write.
class stream_call final : public grpc::ServerCallbackWriter<events::Event> {
 public:
  void bind(grpc::ServerWriteReactor<events::Event>* r) {
    reactor_ = r;
    BindReactor(r);
  }
  void Finish(grpc::Status s) override {
    if (status) fail("a stream finished twice");
    status = std::move(s);
  }
  void SendInitialMetadata() override {
    // nop
  }
  void Write(const events::Event* msg, grpc::WriteOptions) override {
    if (status) fail("a write after the stream finished");
    if (in_flight_) fail("two writes in flight");
    std::string bytes;
    if (!msg->SerializeToString(&bytes)) fail("an event does not serialize");
    events::Event back;
    if (!back.ParseFromString(bytes)) fail("an event does not parse back");
    written.push_back(std::move(bytes));
    in_flight_ = true;
  }
  void WriteAndFinish(const events::Event* msg, grpc::WriteOptions options,
                      grpc::Status s) override {
    Write(msg, options);
    in_flight_ = false;
    Finish(std::move(s));
  }
  /// Completes the writes in flight until there is none.
  void pump() {
    while (in_flight_) {
      in_flight_ = false;
      reactor_->OnWriteDone(true);
    }
  }
  std::optional<grpc::Status> status;
  std::vector<std::string> written;

 private:
  grpc::internal::ServerReactor* reactor() override {
    return reactor_;
  }
  void CallOnDone() override {
    // nop
  }
  grpc::ServerWriteReactor<events::Event>* reactor_ = nullptr;
  bool in_flight_ = false;
};

constexpr const char* rpc_names[] = {
  "StartExecution",  "DescribeExecution", "ListExecutions",  "GetHistory",
  "FollowExecution", "Approve",           "Reject",          "Cancel",
  "WaitForResult",   "ListWorkflows",     "ListDeadLetters", "RetryDeadLetter",
  "Health",          "CheckUpgrade",      "CreateToken",     "ListTokens",
  "RevokeToken",     "GetWorkflowOwner",  "TransferWorkflow"};
constexpr int rpc_count = static_cast<int>(std::size(rpc_names));

constexpr const char* token_keys[]
  = {"",       "admin",   "operator", "starter", "reader", "worker",
     "scoped", "scoped2", "expired",  "revoked", "wrong",  "garbage"};

void check_json_text(const std::string& field, const std::string& text) {
  if (!text.empty() && !nlohmann::json::accept(text))
    fail(field + " is not JSON: " + text.substr(0, 120));
}

void check_info(const admin::ExecutionInfo& info) {
  check_json_text("input_json", info.input_json());
  check_json_text("result_json", info.result_json());
  check_json_text("approval_data_json", info.approval_data_json());
  check_json_text("error.details_json", info.error().details_json());
}

template <class Message>
void check_serializes(const Message& m) {
  std::string bytes;
  if (!m.SerializeToString(&bytes)) fail("a response does not serialize");
  Message back;
  if (!back.ParseFromString(bytes)) fail("a response does not parse back");
}

/// What one call answered.
struct outcome {
  grpc::Status status;
  bool sync = true;
};

template <class Request>
bool decode(Request& req, std::string_view bytes) {
  return req.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

/// Runs a synchronous method with `token` as metadata.
template <class Request, class Response, class Method>
std::optional<outcome>
sync_call(api::admin_service& svc, Method method, std::string_view bytes,
          const std::string& token, void (*check_response)(const Response&)) {
  Request req;
  if (!decode(req, bytes)) return std::nullopt;
  grpc::ServerContext ctx;
  grpc::testing::ServerContextTestSpouse spouse{&ctx};
  if (!token.empty()) spouse.AddClientMetadata("authorization", token);
  Response res;
  auto st = (svc.*method)(&ctx, &req, &res);
  check_serializes(res);
  if (st.ok() && check_response) check_response(res);
  return outcome{st, true};
}

/// Runs a unary callback method (no metadata can be given).
template <class Request, class Response, class Method>
std::optional<outcome> unary_callback(api::admin_service& svc, Method method,
                                      std::string_view bytes,
                                      void (*check_response)(const Response&)) {
  Request req;
  if (!decode(req, bytes)) return std::nullopt;
  grpc::CallbackServerContext ctx;
  grpc::testing::DefaultReactorTestPeer peer{&ctx};
  Response res;
  auto* reactor = (svc.*method)(&ctx, &req, &res);
  grpc::Status st;
  if (reactor == peer.reactor()) {
    if (!peer.test_status_set()) fail("the default reactor did not finish");
    st = peer.test_status();
  } else {
    unary_call call;
    call.bind(reactor);
    if (!call.status) fail("a unary callback did not finish");
    st = *call.status;
    reactor->OnDone();
  }
  check_serializes(res);
  if (st.ok() && check_response) check_response(res);
  return outcome{st, false};
}

std::optional<outcome> follow(api::admin_service& svc, std::string_view bytes) {
  admin::FollowExecutionRequest req;
  if (!decode(req, bytes)) return std::nullopt;
  grpc::CallbackServerContext ctx;
  auto* reactor = svc.FollowExecution(&ctx, &req);
  stream_call call;
  call.bind(reactor);
  call.pump();
  if (!call.status) fail("a follow did not finish");
  auto st = *call.status;
  reactor->OnDone();
  return outcome{st, false};
}

void check_list(const admin::ListExecutionsResponse& res) {
  for (const auto& info : res.executions())
    check_info(info);
}

void check_start(const admin::StartExecutionResponse& res) {
  check_info(res.execution());
}

std::optional<outcome> run(api::admin_service& svc, int rpc,
                           std::string_view bytes, const std::string& token) {
  using svc_t = api::admin_service;
  using namespace admin;
  switch (rpc) {
    case 0:
      return unary_callback<StartExecutionRequest, StartExecutionResponse>(
        svc, &svc_t::StartExecution, bytes, check_start);
    case 1:
      return sync_call<DescribeExecutionRequest, ExecutionInfo>(
        svc, &svc_t::DescribeExecution, bytes, token, check_info);
    case 2:
      return sync_call<ListExecutionsRequest, ListExecutionsResponse>(
        svc, &svc_t::ListExecutions, bytes, token, check_list);
    case 3:
      return sync_call<GetHistoryRequest, GetHistoryResponse>(
        svc, &svc_t::GetHistory, bytes, token, nullptr);
    case 4: return follow(svc, bytes);
    case 5:
      return sync_call<ApproveRequest, ExecutionInfo>(svc, &svc_t::Approve,
                                                      bytes, token, check_info);
    case 6:
      return sync_call<RejectRequest, ExecutionInfo>(svc, &svc_t::Reject, bytes,
                                                     token, check_info);
    case 7:
      return sync_call<CancelRequest, ExecutionInfo>(svc, &svc_t::Cancel, bytes,
                                                     token, check_info);
    case 8:
      return unary_callback<WaitForResultRequest, ExecutionInfo>(
        svc, &svc_t::WaitForResult, bytes, check_info);
    case 9:
      return sync_call<ListWorkflowsRequest, ListWorkflowsResponse>(
        svc, &svc_t::ListWorkflows, bytes, token, nullptr);
    case 10:
      return sync_call<ListDeadLettersRequest, ListDeadLettersResponse>(
        svc, &svc_t::ListDeadLetters, bytes, token, nullptr);
    case 11:
      return sync_call<RetryDeadLetterRequest, ExecutionInfo>(
        svc, &svc_t::RetryDeadLetter, bytes, token, check_info);
    case 12:
      return sync_call<HealthRequest, HealthResponse>(svc, &svc_t::Health,
                                                      bytes, token, nullptr);
    case 13:
      return sync_call<CheckUpgradeRequest, CheckUpgradeResponse>(
        svc, &svc_t::CheckUpgrade, bytes, token, nullptr);
    case 14:
      return sync_call<CreateTokenRequest, CreateTokenResponse>(
        svc, &svc_t::CreateToken, bytes, token, nullptr);
    case 15:
      return sync_call<ListTokensRequest, ListTokensResponse>(
        svc, &svc_t::ListTokens, bytes, token, nullptr);
    case 16:
      return sync_call<RevokeTokenRequest, TokenInfo>(svc, &svc_t::RevokeToken,
                                                      bytes, token, nullptr);
    case 17:
      return sync_call<GetWorkflowOwnerRequest, WorkflowOwner>(
        svc, &svc_t::GetWorkflowOwner, bytes, token, nullptr);
    default:
      return sync_call<TransferWorkflowRequest, WorkflowOwner>(
        svc, &svc_t::TransferWorkflow, bytes, token, nullptr);
  }
}

bool same_tokens(const std::map<std::string, eventstore::token_row>& a,
                 const std::map<std::string, eventstore::token_row>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [id, row] : a) {
    auto i = b.find(id);
    if (i == b.end() || i->second.revoked_at_ms != row.revoked_at_ms)
      return false;
  }
  return true;
}

void check(world& w, int rpc, bool tokens, const std::string& key,
           const outcome& out,
           const std::map<std::string, eventstore::token_row>& before) {
  using code = grpc::StatusCode;
  auto c = out.status.error_code();
  static constexpr code documented[] = {code::OK,
                                        code::NOT_FOUND,
                                        code::INVALID_ARGUMENT,
                                        code::FAILED_PRECONDITION,
                                        code::DEADLINE_EXCEEDED,
                                        code::UNAVAILABLE,
                                        code::DATA_LOSS,
                                        code::UNAUTHENTICATED,
                                        code::PERMISSION_DENIED,
                                        code::RESOURCE_EXHAUSTED,
                                        code::UNIMPLEMENTED,
                                        code::INTERNAL};
  if (std::find(std::begin(documented), std::end(documented), c)
      == std::end(documented))
    fail(std::string{rpc_names[rpc]} + ": undocumented status "
         + std::to_string(c));
  if (c == code::INTERNAL && !w.engine->gave_internal)
    fail(std::string{rpc_names[rpc]}
         + ": INTERNAL without the engine's internal error");
  std::string name = rpc_names[rpc];
  bool dead_letters = rpc == 10 || rpc == 11;
  bool token_rpc = rpc >= 14 && rpc <= 16;
  const auto& calls = w.engine->calls;
  auto untouched = [&] {
    return calls.empty() && same_tokens(before, w.store.snapshot());
  };
  if (!tokens) {
    if (token_rpc && c != code::FAILED_PRECONDITION)
      fail(name + " without tokens answered " + std::to_string(c));
    return;
  }
  auto needs = auth::needed("grpc", "AdminService/" + name);
  if (!needs) fail(name + " is not in the permission table");
  if (*needs == auth::permission::open) return;
  std::optional<auth::principal> who;
  if (out.sync) {
    auto i = w.tokens.who.find(key);
    if (i != w.tokens.who.end()) who = i->second;
  }
  if (!who) {
    if (c != code::UNAUTHENTICATED || !untouched())
      fail(name + " without a valid token answered " + std::to_string(c));
    return;
  }
  if (!auth::allows(who->r, *needs)) {
    if (c != code::PERMISSION_DENIED || !untouched())
      fail(name + ": " + who->name + " may not, yet " + std::to_string(c));
    return;
  }
  if (dead_letters && c != code::UNIMPLEMENTED && c != code::INVALID_ARGUMENT)
    fail(name + " without a task router answered " + std::to_string(c));
  if (auto err = fuzz::principal_call_error(
        *w.engine, *who, {"approve", "reject", "cancel", "history"});
      !err.empty())
    fail(err);
  if (w.waits->held(who->name) != 0)
    fail(who->name + " still holds a waiting call's place");
}

} // namespace

// The world is made before the first input: its tokens' slow hashes do
// not count against an input's time.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)the_world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size < 4) return 0;
  auto& w = the_world();
  bool tokens = data[0] & 1;
  int rpc = data[1] % rpc_count;
  std::string key = token_keys[data[2] % std::size(token_keys)];
  std::size_t n = std::min<std::size_t>(data[3], size - 4);
  std::string_view rest{reinterpret_cast<const char*>(data) + 4, size - 4};
  w.in.reset(rest.substr(0, n));
  rest.remove_prefix(n);
  std::string token;
  if (key == "garbage")
    token = "Bearer cbm_not_a_token";
  else if (!key.empty())
    token = "Bearer " + w.tokens.text.at(key);
  w.engine->reset();
  w.store.dead_letter_executions.clear();
  auto before = w.store.snapshot();
  auto& svc = tokens ? w.token_service : w.open_service;
  auto out = run(svc, rpc, rest, token);
  if (out) check(w, rpc, tokens, key, *out, before);
  // The next input starts from the same tokens.
  w.store.restore(w.stored);
  return 0;
}
