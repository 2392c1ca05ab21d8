// Security against the real `cerebelum node` process (docs/security.md):
// the permission table walked over gRPC and HTTP, the recorded principal,
// worker identities bound to tokens, secure defaults and TLS.

#include <catch2/catch.hpp>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "src/auth/permissions.hpp"
#include "tests/node/node_fixture.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/tokens.hpp"
#include "worker.grpc.pb.h"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace auth = cerebelum::auth;

namespace {

/// A node that requires tokens, with its first admin token.
struct secured_node {
  explicit secured_node(std::filesystem::path data_dir = {})
    : node{std::move(data_dir), {}, {}, {"--auth", "token"}} {
    // nop
  }

  node_process node;
  std::string admin = first_line(node.data_dir() / "admin.token");

  /// Makes a token; returns {id, secret}.
  std::pair<std::string, std::string>
  make(const std::string& name, const std::string& role,
       const std::vector<std::string>& extra = {}) {
    auto args = token_create_args(name, role, extra);
    args.insert(args.begin(), {"--token", admin});
    auto r = node.cli(args);
    return created_token(r.code, r.output);
  }
};

/// The gRPC status code of calling `method` with an empty request.
grpc::StatusCode call_grpc(grpc::GenericStub& stub, const std::string& method,
                           const std::string& token) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  auto service = method.starts_with("Admin") ? "/cerebelum.admin."
                                             : "/cerebelum.worker.";
  grpc::ByteBuffer request;
  grpc::Slice empty{""};
  request = grpc::ByteBuffer{&empty, 1};
  grpc::ByteBuffer response;
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<grpc::Status> result;
  stub.UnaryCall(&ctx, service + method, grpc::StubOptions{}, &request,
                 &response, [&](grpc::Status st) {
                   std::lock_guard<std::mutex> guard{mtx};
                   result = st;
                   cv.notify_all();
                 });
  std::unique_lock<std::mutex> guard{mtx};
  cv.wait(guard, [&] {
    return result.has_value();
  });
  return result->error_code();
}

/// The HTTP status of route `name` ("POST /v1/...") with an empty body.
int call_http(httplib::Client& http, const std::string& name,
              const std::string& token) {
  auto space = name.find(' ');
  auto method = name.substr(0, space);
  auto path = name.substr(space + 1);
  auto fill = [&](const std::string& what, const std::string& with) {
    if (auto i = path.find(what); i != std::string::npos)
      path.replace(i, what.size(), with);
  };
  fill("{name}", "order");
  if (path.starts_with("/v1/dead-letters/"))
    fill("{id}", "1");
  else
    fill("{id}", "no-such-execution");
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  auto res = method == "GET" ? http.Get(path, headers)
                             : http.Post(path, headers, "", "application/json");
  return res ? res->status : -1;
}

/// An HTTPS client of port `port` on loopback that trusts the CA in `ca`
/// and shows the client certificate `cert` (with `key`) when one is given.
std::unique_ptr<httplib::SSLClient>
https_client(int port, const std::filesystem::path& ca,
             const std::filesystem::path& cert = {},
             const std::filesystem::path& key = {}) {
  auto c = cert.empty()
             ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
             : std::make_unique<httplib::SSLClient>(
               "127.0.0.1", port, cert.string(), key.string());
  c->set_ca_cert_path(ca.string());
  c->enable_server_certificate_verification(true);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(5, 0);
  return c;
}

/// `cerebelum dev-certs` certificates in `dir`/certs and, of another CA,
/// in `dir`/other.
struct two_cas {
  temp_dir dir;
  std::filesystem::path certs = dir.path / "certs";
  std::filesystem::path other = dir.path / "other";

  two_cas() {
    REQUIRE(run_cli({"dev-certs", certs.string()}).code == 0);
    REQUIRE(run_cli({"dev-certs", other.string()}).code == 0);
  }

  [[nodiscard]] std::vector<std::string> server_flags() const {
    return {"--tls-cert", (certs / "node.pem").string(), "--tls-key",
            (certs / "node.key").string()};
  }
};

} // namespace

TEST_CASE("every gRPC method and HTTP route refuses a call without a token, "
          "with a wrong role, an expired or a revoked token, and admits "
          "the roles the table names") {
  secured_node s;
  auto walk = make_walk_tokens(
    [&](const std::string& name, const std::string& role,
        const std::vector<std::string>& extra) {
      return s.make(name, role, extra);
    },
    [&](const std::string& id) {
      auto rv = s.node.cli({"--token", s.admin, "token", "revoke", id});
      REQUIRE(rv.code == 0);
    },
    "admin");
  const auto& tokens = walk.by_role;
  const auto& expired = walk.expired;
  const auto& revoked = walk.revoked;
  auto channel
    = grpc::CreateChannel("127.0.0.1:" + std::to_string(s.node.grpc_port),
                          grpc::InsecureChannelCredentials());
  grpc::GenericStub stub{channel};
  httplib::Client http{"127.0.0.1", s.node.http_port};
  http.set_read_timeout(10, 0);
  std::size_t walked = 0;
  std::size_t caf_entries = 0;
  for (const auto& e : auth::endpoints()) {
    if (e.surface == "caf") {
      ++caf_entries; // walked by caf_security_test with a real CAF worker
      continue;
    }
    std::string name{e.name};
    bool grpc_side = e.surface == "grpc";
    INFO(name);
    auto code_of = [&](const std::string& token) {
      return grpc_side ? static_cast<int>(call_grpc(stub, name, token))
                       : call_http(http, name, token);
    };
    auto unauthenticated
      = grpc_side ? static_cast<int>(grpc::StatusCode::UNAUTHENTICATED) : 401;
    auto forbidden
      = grpc_side ? static_cast<int>(grpc::StatusCode::PERMISSION_DENIED) : 403;
    if (e.needs == auth::permission::open) {
      auto c = code_of("");
      CHECK(c != unauthenticated);
      CHECK(c != forbidden);
      ++walked;
      continue;
    }
    CHECK(code_of("") == unauthenticated);
    CHECK(code_of("cbm_0000000000000000_" + std::string(64, '0'))
          == unauthenticated);
    CHECK(code_of(expired) == unauthenticated);
    CHECK(code_of(revoked) == unauthenticated);
    for (const auto& [r, token] : tokens) {
      INFO("role " << auth::to_string(r));
      auto c = code_of(token);
      if (auth::allows(r, e.needs)) {
        CHECK(c != unauthenticated);
        CHECK(c != forbidden);
      } else {
        CHECK(c == forbidden);
      }
    }
    ++walked;
  }
  CHECK(walked + caf_entries == auth::endpoints().size());
}

namespace {

/// The first event of `type` in the history of `id` over HTTP.
json event_of(httplib::Client& http, const std::string& token,
              const std::string& id, const std::string& type) {
  auto res = http.Get("/v1/executions/" + id + "/history",
                      {{"Authorization", "Bearer " + token}});
  if (!res || res->status != 200) {
    UNSCOPED_INFO("history of "
                  << id << ": "
                  << (res ? res->body : std::string{"no answer"}));
    return json{};
  }
  auto body = json::parse(res->body);
  for (auto& ev : body["events"])
    if (ev["type"] == type) return ev;
  return json{};
}

} // namespace

TEST_CASE("an approval records the token's principal with a typed name as "
          "a note beside it, and a worker token may not approve") {
  secured_node s;
  auto ops = s.make("ops-alice", "operator").second;
  auto worker = s.make("worker-1", "worker").second;
  auto order = json{{"order_id", "p-1"},
                    {"amount", 1500},
                    {"items", {{{"sku", "a"}, {"qty", 1}}}}}
                 .dump();
  auto started = s.node.cli(
    {"--token", ops, "start", "order", "--id", "p-1", "--input", order});
  INFO(started.output);
  REQUIRE(started.code == 0);
  json last;
  for (int i = 0; i < 300; ++i) {
    last = s.node.cli({"--token", ops, "show", "p-1", "--json"}).json();
    if (last.is_object() && last["status"] == "awaiting_approval") break;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(last["status"] == "awaiting_approval");
  auto by_worker
    = s.node.cli({"--token", worker, "approve", "p-1", "--by", "worker-1"});
  CHECK(by_worker.code == 1);
  CHECK(by_worker.output.find("PERMISSION_DENIED") != std::string::npos);
  auto anonymous = s.node.cli({"approve", "p-1", "--by", "alice"});
  CHECK(anonymous.code == 1);
  CHECK(anonymous.output.find("UNAUTHENTICATED") != std::string::npos);
  // Without a token or a client certificate the CLI wants a name.
  auto nameless = s.node.cli({"approve", "p-1"});
  CHECK(nameless.code == 2);
  CHECK(nameless.output.find("--by NAME is required") != std::string::npos);
  auto approved = s.node.cli(
    {"--token", ops, "approve", "p-1", "--by", "admin (impersonated)"});
  INFO(approved.output);
  REQUIRE(approved.code == 0);
  httplib::Client http{"127.0.0.1", s.node.http_port};
  auto start = event_of(http, ops, "p-1", "execution_started");
  CHECK(start["started_by"] == "ops-alice");
  CHECK(start["started_by_note"] == ""); // the CLI typed none
  auto granted = event_of(http, ops, "p-1", "approval_granted");
  CHECK(granted["by"] == "ops-alice");
  CHECK(granted["by_note"] == "admin (impersonated)");

  // Over HTTP: a start's ?by= and a cancel's body `by` are notes too; a
  // typed name equal to the principal adds none.
  auto made = http.Post("/v1/workflows/order/executions?id=p-2&by=carol",
                        {{"Authorization", "Bearer " + ops}}, order,
                        "application/json");
  REQUIRE(made);
  REQUIRE(made->status == 201);
  auto started2 = event_of(http, ops, "p-2", "execution_started");
  CHECK(started2["started_by"] == "ops-alice");
  CHECK(started2["started_by_note"] == "carol");
  auto cancelled = http.Post("/v1/executions/p-2/cancel",
                             {{"Authorization", "Bearer " + ops}},
                             R"({"by":"dave","reason":"test"})",
                             "application/json");
  REQUIRE(cancelled);
  CHECK(cancelled->status == 200);
  auto asked = event_of(http, ops, "p-2", "cancel_requested");
  CHECK(asked["by"] == "ops-alice");
  CHECK(asked["by_note"] == "dave");
  json done;
  for (int i = 0; i < 100 && done.is_null(); ++i) {
    done = event_of(http, ops, "p-2", "execution_cancelled");
    if (done.is_null()) std::this_thread::sleep_for(100ms);
  }
  CHECK(done["by"] == "ops-alice");
  CHECK(done["by_note"] == "dave");
  auto same = s.node.cli({"--token", ops, "start", "order", "--id", "p-3",
                          "--input", order, "--by", "ops-alice"});
  REQUIRE(same.code == 0);
  CHECK(event_of(http, ops, "p-3", "execution_started")["started_by_note"]
        == "");
}

TEST_CASE("a token scoped to a workflow reads and decides only executions "
          "of it, over HTTP and gRPC") {
  secured_node s;
  auto order = json{{"order_id", "s-1"},
                    {"amount", 10},
                    {"items", {{{"sku", "a"}, {"qty", 1}}}}}
                 .dump();
  for (auto [wf, id, input] :
       {std::tuple{"order", "o-1", order},
        std::tuple{
          "payment_retry", "p-1",
          std::string{R"({"amount":5,"card":"c","payment_id":"x"})"}}}) {
    auto r = s.node.cli(
      {"--token", s.admin, "start", wf, "--id", id, "--input", input});
    INFO(r.output);
    REQUIRE(r.code == 0);
  }
  auto orders
    = s.make("orders-only", "operator", {"--workflows", "order"}).second;
  auto both = s.make("two-workflows", "reader",
                     {"--workflows", "order,payment_retry"})
                .second;
  auto bearer = [](const std::string& t) {
    return httplib::Headers{{"Authorization", "Bearer " + t}};
  };
  httplib::Client http{"127.0.0.1", s.node.http_port};
  auto status = [&](const std::string& path, const std::string& t) {
    auto res = http.Get(path, bearer(t));
    return res ? res->status : -1;
  };
  // Reads of its workflow's executions are served, of another refused.
  CHECK(status("/v1/executions/o-1", orders) == 200);
  CHECK(status("/v1/executions/o-1/history", orders) == 200);
  CHECK(status("/v1/executions/p-1", orders) == 403);
  CHECK(status("/v1/executions/p-1/history", orders) == 403);
  CHECK(status("/v1/executions/p-1/events", orders) == 403);
  CHECK(status("/v1/executions/p-1/events?follow=true", orders) == 403);
  CHECK(status("/v1/executions/p-1", both) == 200);
  CHECK(status("/v1/executions/p-1", s.admin) == 200);
  // A list shows only its workflow; another workflow is refused; a token of
  // two workflows names one.
  auto listed = http.Get("/v1/executions", bearer(orders));
  REQUIRE(listed);
  REQUIRE(listed->status == 200);
  auto items = json::parse(listed->body)["executions"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["execution_id"] == "o-1");
  CHECK(status("/v1/executions?workflow=payment_retry", orders) == 403);
  CHECK(status("/v1/executions", both) == 400);
  CHECK(status("/v1/executions?workflow=payment_retry", both) == 200);
  auto workflows = http.Get("/v1/workflows", bearer(orders));
  REQUIRE(workflows);
  for (auto& wf : json::parse(workflows->body)["workflows"])
    CHECK(wf["name"] == "order");
  // Decisions on another workflow's execution are refused.
  auto cancel = http.Post("/v1/executions/p-1/cancel", bearer(orders), "{}",
                          "application/json");
  REQUIRE(cancel);
  CHECK(cancel->status == 403);
  CHECK(cancel->body.find("scoped to workflow order") != std::string::npos);
  // The same over gRPC (the CLI).
  auto shown = s.node.cli({"--token", orders, "show", "p-1"});
  CHECK(shown.code == 1);
  CHECK(shown.output.find("PERMISSION_DENIED") != std::string::npos);
  CHECK(s.node.cli({"--token", orders, "show", "o-1"}).code == 0);
  auto grpc_cancel = s.node.cli({"--token", orders, "cancel", "p-1"});
  CHECK(grpc_cancel.code == 1);
  CHECK(grpc_cancel.output.find("PERMISSION_DENIED") != std::string::npos);
  auto grpc_list = s.node.cli({"--token", orders, "list", "--json"});
  INFO(grpc_list.output);
  REQUIRE(grpc_list.code == 0);
  CHECK(grpc_list.output.find("o-1") != std::string::npos);
  CHECK(grpc_list.output.find("p-1") == std::string::npos);
  CHECK(
    s.node.cli({"--token", s.admin, "show", "p-1", "--json"}).json()["status"]
    != "cancelled");
}

TEST_CASE("a worker id belongs to the token that registered it, and a "
          "queue-scoped worker token serves only its queues") {
  secured_node s;
  auto a = s.make("worker-a", "worker").second;
  auto b = s.make("worker-b", "worker").second;
  auto scoped = s.make("worker-c", "worker", {"--queues", "q1"}).second;
  auto channel
    = grpc::CreateChannel("127.0.0.1:" + std::to_string(s.node.grpc_port),
                          grpc::InsecureChannelCredentials());
  auto stub = cerebelum::worker::WorkerService::NewStub(channel);
  auto reg = [&](const std::string& token, const std::string& id,
                 const std::string& queue) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    cerebelum::worker::RegisterRequest req;
    req.set_worker_id(id);
    req.add_queues(queue);
    cerebelum::worker::RegisterResponse res;
    return stub->Register(&ctx, req, &res);
  };
  CHECK(reg(a, "w-1", "q1").ok());
  auto stolen = reg(b, "w-1", "q1");
  CHECK(stolen.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(reg(a, "w-1", "q1").ok()); // its own token may register again
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + b);
    cerebelum::worker::UnregisterRequest req;
    req.set_worker_id("w-1");
    cerebelum::worker::UnregisterResponse res;
    CHECK(stub->Unregister(&ctx, req, &res).error_code()
          == grpc::StatusCode::PERMISSION_DENIED);
  }
  CHECK(reg(scoped, "w-2", "q1").ok());
  auto other_queue = reg(scoped, "w-3", "q2");
  CHECK(other_queue.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(other_queue.error_message().find("q2") != std::string::npos);
}

TEST_CASE("a workflow name a token's worker defined stays that token "
          "name's after the node is killed and restarted") {
  temp_dir dir;
  auto flow = [](const std::string& version) {
    return "name: owned_flow\nversion: \"" + version
           + "\"\nsteps:\n  - name: s\n    task: t.s\n    queue: q1\n";
  };
  auto reg = [](int port, const std::string& token, const std::string& id,
                const std::string& text) {
    auto stub = cerebelum::worker::WorkerService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    cerebelum::worker::RegisterRequest req;
    req.set_worker_id(id);
    req.add_queues("q1");
    auto* wf = req.add_workflows();
    wf->set_name("owned_flow.yaml");
    wf->set_format("yaml");
    wf->set_text(text);
    cerebelum::worker::RegisterResponse res;
    return stub->Register(&ctx, req, &res);
  };
  std::string a_id;
  std::string b;
  {
    secured_node s{dir.path};
    auto a = s.make("worker-a", "worker");
    a_id = a.first;
    b = s.make("worker-b", "worker").second;
    auto first = reg(s.node.grpc_port, a.second, "w-a", flow("1"));
    INFO(first.error_message());
    REQUIRE(first.ok());
  } // kill -9
  secured_node s{dir.path};
  auto stolen = reg(s.node.grpc_port, b, "w-b", flow("evil"));
  CHECK(stolen.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(stolen.error_message().find("is defined by token 'worker-a'")
        != std::string::npos);
  // A new token of the same name (the old one revoked: a rotation) deploys
  // a new version.
  REQUIRE(s.node.cli({"--token", s.admin, "token", "revoke", a_id}).code == 0);
  auto rotated = s.make("worker-a", "worker").second;
  auto deployed = reg(s.node.grpc_port, rotated, "w-a2", flow("2"));
  INFO(deployed.error_message());
  CHECK(deployed.ok());
}

TEST_CASE("a worker token may not replace another token's workflow, an "
          "admin token may, the replacement is recorded across a kill -9, a "
          "transfer lets the new owner deploy, and a refused registration "
          "records none of its names") {
  temp_dir dir;
  auto flow = [](const std::string& name, const std::string& version) {
    return "name: " + name + "\nversion: \"" + version
           + "\"\nsteps:\n  - name: s\n    task: t.s\n    queue: q1\n";
  };
  auto reg = [](int port, const std::string& token, const std::string& id,
                const std::vector<std::string>& texts) {
    auto stub = cerebelum::worker::WorkerService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    cerebelum::worker::RegisterRequest req;
    req.set_worker_id(id);
    req.add_queues("q1");
    for (std::size_t i = 0; i < texts.size(); ++i) {
      auto* wf = req.add_workflows();
      wf->set_name("flow" + std::to_string(i) + ".yaml");
      wf->set_format("yaml");
      wf->set_text(texts[i]);
    }
    cerebelum::worker::RegisterResponse res;
    return stub->Register(&ctx, req, &res);
  };
  std::string a;
  std::string b;
  {
    secured_node s{dir.path};
    a = s.make("worker-a", "worker").second;
    b = s.make("worker-b", "worker").second;
    auto first = reg(s.node.grpc_port, a, "w-a", {flow("taken_flow", "1")});
    INFO(first.error_message());
    REQUIRE(first.ok());
    // A worker token: refused, and its other name is not recorded.
    auto refused = reg(s.node.grpc_port, b, "w-b",
                       {flow("b_flow", "1"), flow("taken_flow", "evil")});
    CHECK(refused.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(refused.error_message().find(
            "is defined by token 'worker-a'; a worker may not replace it")
          != std::string::npos);
    CHECK(refused.error_message().find("(a token of role admin may)")
          != std::string::npos);
    auto none = s.node.cli(
      {"--token", s.admin, "workflow", "owner", "b_flow", "--json"});
    CHECK(none.code != 0);
    CHECK(none.output.find("no one owns workflow 'b_flow'")
          != std::string::npos);
    // The admin token: allowed, and it becomes the owner.
    auto replaced = reg(s.node.grpc_port, s.admin, "w-admin",
                        {flow("taken_flow", "2")});
    INFO(replaced.error_message());
    REQUIRE(replaced.ok());
    CHECK(s.node.process().wait_for_line(
      "workflow taken_flow replaced: owner token 'worker-a' -> token 'admin' "
      "by token 'admin' (worker w-admin)",
      10s));
  } // kill -9
  secured_node s{dir.path};
  auto shown = s.node.cli(
    {"--token", s.admin, "workflow", "owner", "taken_flow", "--json"});
  INFO(shown.output);
  REQUIRE(shown.code == 0);
  auto o = shown.json();
  CHECK(o["owner"] == "token 'admin'");
  CHECK(o["recorded"] == true);
  CHECK(o["recorded_owner"] == "token 'admin'");
  CHECK(o["previous_owner"] == "token 'worker-a'");
  CHECK(o["replaced_by"] == "token 'admin'");
  CHECK(o["replaced_at_ms"].get<std::int64_t>() > 0);
  // The former owner brings nothing new any more.
  auto former = reg(s.node.grpc_port, a, "w-a", {flow("taken_flow", "3")});
  CHECK(former.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(former.error_message().find("is defined by token 'admin'")
        != std::string::npos);
  // Only the admin role sees and moves owners.
  auto by_worker = s.node.cli(
    {"--token", b, "workflow", "transfer", "taken_flow", "--to", "worker-b"});
  CHECK(by_worker.code != 0);
  CHECK(by_worker.output.find("PERMISSION_DENIED") != std::string::npos);
  auto to_nobody = s.node.cli({"--token", s.admin, "workflow", "transfer",
                               "taken_flow", "--to", "nobody"});
  CHECK(to_nobody.code != 0);
  CHECK(to_nobody.output.find("no token is named 'nobody'")
        != std::string::npos);
  auto moved = s.node.cli({"--token", s.admin, "workflow", "transfer",
                           "taken_flow", "--to", "worker-b", "--json"});
  INFO(moved.output);
  REQUIRE(moved.code == 0);
  CHECK(moved.json()["owner"] == "token 'worker-b'");
  CHECK(moved.json()["previous_owner"] == "token 'admin'");
  CHECK(moved.json()["replaced_by"] == "token 'admin'");
  auto deployed = reg(s.node.grpc_port, b, "w-b", {flow("taken_flow", "3")});
  INFO(deployed.error_message());
  CHECK(deployed.ok());
  auto listed = s.node.cli({"--token", s.admin, "workflows", "--json"});
  REQUIRE(listed.code == 0);
  bool seen = false;
  INFO(listed.output);
  // Every version of the name shows its one owner.
  auto all = listed.json();
  for (const auto& wf : all["workflows"])
    if (wf["name"] == "taken_flow") {
      seen = true;
      CHECK(wf["owner"] == "token 'worker-b'");
    }
  CHECK(seen);
  // The same over HTTP.
  httplib::Client http{"127.0.0.1", s.node.http_port};
  httplib::Headers admin_auth{{"Authorization", "Bearer " + s.admin}};
  auto got = http.Get("/v1/workflows/taken_flow/owner", admin_auth);
  REQUIRE(got);
  CHECK(got->status == 200);
  CHECK(json::parse(got->body)["owner"] == "token 'worker-b'");
  auto back = http.Post("/v1/workflows/taken_flow/owner", admin_auth,
                        R"({"to": "worker-a"})", "application/json");
  REQUIRE(back);
  INFO(back->body);
  CHECK(back->status == 200);
  CHECK(json::parse(back->body)["previous_owner"] == "token 'worker-b'");
  auto bad = http.Post("/v1/workflows/taken_flow/owner", admin_auth,
                       R"({"too": "worker-a"})", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(bad->body.find("unknown field 'too'") != std::string::npos);
  httplib::Headers worker_auth{{"Authorization", "Bearer " + b}};
  auto forbidden = http.Get("/v1/workflows/taken_flow/owner", worker_auth);
  REQUIRE(forbidden);
  CHECK(forbidden->status == 403);
}

TEST_CASE("a node asked to listen beyond loopback without TLS and tokens "
          "refuses to start and names the flags") {
  temp_dir dir;
  child_process proc{{CEREBELUM_BIN, "node", "--data-dir", dir.path.string(),
                      "--listen", "0.0.0.0:" + std::to_string(free_port()),
                      "--http", ""}};
  auto code = proc.wait_exit(30s);
  INFO(proc.output());
  REQUIRE(code);
  CHECK(*code == 2);
  CHECK(proc.output().find("--tls-cert") != std::string::npos);
  CHECK(proc.output().find("--auth token") != std::string::npos);
  CHECK(proc.output().find("--insecure") != std::string::npos);

  child_process http{{CEREBELUM_BIN, "node", "--data-dir", dir.path.string(),
                      "--listen", "127.0.0.1:" + std::to_string(free_port()),
                      "--http", "0.0.0.0:" + std::to_string(free_port())}};
  auto http_code = http.wait_exit(30s);
  INFO(http.output());
  REQUIRE(http_code);
  CHECK(*http_code == 2);
  CHECK(http.output().find("--http 0.0.0.0") != std::string::npos);
  CHECK(http.output().find("--tls-cert") != std::string::npos);
  CHECK(http.output().find("--auth token") != std::string::npos);
  CHECK(http.output().find("--insecure") != std::string::npos);

  temp_dir other;
  auto health_port = free_port();
  child_process insecure{
    {CEREBELUM_BIN, "node", "--data-dir", other.path.string(), "--listen",
     "0.0.0.0:" + std::to_string(free_port()), "--http",
     "127.0.0.1:" + std::to_string(health_port), "--insecure"}};
  auto ready = insecure.wait_for_line("node ready", 30s);
  INFO(insecure.output());
  CHECK(ready);
  CHECK(insecure.output().find("warn") != std::string::npos);
  CHECK(insecure.output().find("--insecure: --listen 0.0.0.0")
        != std::string::npos);
  httplib::Client http_client{"127.0.0.1", health_port};
  auto health = http_client.Get("/v1/health");
  REQUIRE(health);
  auto warnings = json::parse(health->body)["warnings"];
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].get<std::string>().find("--insecure: --listen 0.0.0.0")
        == 0);
  insecure.kill_hard();
}

TEST_CASE("the data directory and the store are private to the node's user "
          "whatever the umask") {
  auto old = ::umask(0);
  temp_dir dir;
  auto data = dir.path / "data";
  { node_process node{data}; }
  ::umask(old);
  auto mode = [](const std::filesystem::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
  };
  CHECK(mode(data) == 0700);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator{data}) {
    if (!e.is_regular_file()) continue;
    INFO(e.path());
    CHECK((mode(e.path()) & 077) == 0);
    ++files;
  }
  CHECK(files > 0);
}

TEST_CASE("a TLS node serves a client that trusts its CA and refuses one "
          "that does not") {
  temp_dir dir;
  auto certs = dir.path / "certs";
  auto other = dir.path / "other";
  REQUIRE(run_cli({"dev-certs", certs.string()}).code == 0);
  REQUIRE(run_cli({"dev-certs", other.string()}).code == 0);
  node_process node{{},
                    {},
                    {},
                    {"--auth", "token", "--tls-cert",
                     (certs / "node.pem").string(), "--tls-key",
                     (certs / "node.key").string()}};
  CHECK(node.process().output().find("(TLS, tokens required)")
        != std::string::npos);
  auto admin = first_line(node.data_dir() / "admin.token");
  auto server = "localhost:" + std::to_string(node.grpc_port);
  auto trusted
    = run_cli({"--server", server, "--tls-ca", (certs / "ca.pem").string(),
               "--token", admin, "list", "--json"});
  INFO(trusted.output);
  CHECK(trusted.code == 0);
  auto wrong_ca
    = run_cli({"--server", server, "--tls-ca", (other / "ca.pem").string(),
               "--token", admin, "list"});
  CHECK(wrong_ca.code == 1);
  auto plain = run_cli({"--server", server, "--token", admin, "list"});
  CHECK(plain.code == 1);
}

TEST_CASE("a node with --tls-client-ca serves a client with a certificate of "
          "that CA and refuses one without") {
  temp_dir dir;
  auto certs = dir.path / "certs";
  auto other = dir.path / "other";
  REQUIRE(run_cli({"dev-certs", certs.string()}).code == 0);
  REQUIRE(run_cli({"dev-certs", other.string()}).code == 0);
  node_process node{{},
                    {},
                    {},
                    {"--tls-cert", (certs / "node.pem").string(), "--tls-key",
                     (certs / "node.key").string(), "--tls-client-ca",
                     (certs / "ca.pem").string()}};
  auto server = "localhost:" + std::to_string(node.grpc_port);
  auto ca = (certs / "ca.pem").string();
  auto with_cert = run_cli({"--server", server, "--tls-ca", ca, "--tls-cert",
                            (certs / "client.pem").string(), "--tls-key",
                            (certs / "client.key").string(), "list"});
  INFO(with_cert.output);
  CHECK(with_cert.code == 0);
  auto without = run_cli({"--server", server, "--tls-ca", ca, "list"});
  CHECK(without.code == 1);
  auto foreign = run_cli({"--server", server, "--tls-ca", ca, "--tls-cert",
                          (other / "client.pem").string(), "--tls-key",
                          (other / "client.key").string(), "list"});
  CHECK(foreign.code == 1);
}

TEST_CASE("a TLS node serves its HTTP API over HTTPS only, to a client that "
          "trusts its CA, and still requires a token") {
  two_cas cas;
  auto flags = cas.server_flags();
  flags.insert(flags.end(), {"--auth", "token"});
  node_process node{{}, {}, {}, flags};
  auto address = "127.0.0.1:" + std::to_string(node.http_port);
  CHECK(node.process().output().find("HTTP API listening on " + address
                                     + " (HTTPS, tokens required)")
        != std::string::npos);
  auto admin = first_line(node.data_dir() / "admin.token");
  auto trusted = https_client(node.http_port, cas.certs / "ca.pem");
  auto health = trusted->Get("/v1/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto anonymous = trusted->Get("/v1/executions");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  auto listed = trusted->Get("/v1/executions",
                             {{"Authorization", "Bearer " + admin}});
  REQUIRE(listed);
  CHECK(listed->status == 200);

  auto foreign = https_client(node.http_port, cas.other / "ca.pem");
  auto refused = foreign->Get("/v1/health");
  CHECK_FALSE(refused);
  CHECK(refused.error() == httplib::Error::SSLServerVerification);

  // Plain HTTP to the HTTPS port: no TLS handshake, no answer.
  httplib::Client plain{"127.0.0.1", node.http_port};
  plain.set_connection_timeout(5, 0);
  plain.set_read_timeout(5, 0);
  auto unanswered = plain.Get("/v1/health");
  CHECK_FALSE(unanswered);
  node.process().wait_for_line("TLS handshake", 5s);
  CHECK(node.process().output().find("TLS handshake failed")
        != std::string::npos);
  // The node still serves after the bad clients.
  auto again = trusted->Get("/v1/health");
  REQUIRE(again);
  CHECK(again->status == 200);
}

TEST_CASE("a node with --tls-client-ca serves HTTPS to a client with a "
          "certificate of that CA and refuses one without or with another") {
  two_cas cas;
  auto flags = cas.server_flags();
  flags.insert(flags.end(),
               {"--tls-client-ca", (cas.certs / "ca.pem").string()});
  node_process node{{}, {}, {}, flags};
  auto ca = cas.certs / "ca.pem";
  auto with_cert = https_client(node.http_port, ca, cas.certs / "client.pem",
                                cas.certs / "client.key");
  auto served = with_cert->Get("/v1/workflows");
  REQUIRE(served);
  CHECK(served->status == 200);
  auto without = https_client(node.http_port, ca);
  CHECK_FALSE(without->Get("/v1/workflows"));
  auto foreign = https_client(node.http_port, ca, cas.other / "client.pem",
                              cas.other / "client.key");
  CHECK_FALSE(foreign->Get("/v1/workflows"));
}

TEST_CASE("a node with TLS and tokens may serve HTTP beyond loopback") {
  two_cas cas;
  temp_dir data;
  auto port = free_port();
  std::vector<std::string> args{
    CEREBELUM_BIN, "node",
    "--data-dir",  data.path.string(),
    "--listen",    "127.0.0.1:" + std::to_string(free_port()),
    "--http",      "0.0.0.0:" + std::to_string(port),
    "--auth",      "token"};
  auto flags = cas.server_flags();
  args.insert(args.end(), flags.begin(), flags.end());
  child_process proc{args};
  auto ready = proc.wait_for_line("node ready", 30s);
  INFO(proc.output());
  REQUIRE(ready);
  CHECK(proc.output().find("--insecure") == std::string::npos);
  auto health = https_client(port, cas.certs / "ca.pem")->Get("/v1/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  proc.kill_hard();
}
