// The limit of waiting requests per principal against the real `cerebelum
// node` process (docs/security.md, *Waiting requests*): a token at its
// limit is refused at once (HTTP 429, gRPC RESOURCE_EXHAUSTED) while
// another token is served, and is served again once its waits ended,
// whether they were answered or their client left.

#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "admin.grpc.pb.h"
#include "tests/node/node_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/tokens.hpp"
#include "worker.grpc.pb.h"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// A node with tokens and a limit of 2 waiting requests per principal.
struct limited_node {
  node_process node{{},
                    {},
                    {},
                    {"--auth", "token", "--max-waits-per-principal", "2"}};
  std::string admin = first_line(node.data_dir() / "admin.token");

  /// Makes a token of `role`; returns its secret.
  std::string make(const std::string& name, const std::string& role) {
    auto args = token_create_args(name, role);
    args.insert(args.begin(), {"--token", admin});
    auto r = node.cli(args);
    return created_token(r.code, r.output).second;
  }
};

httplib::Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

/// A GET /v1/executions/{id}/events?follow=true held open on a thread of
/// its own until the execution ends or `leave` closes it.
class held_follow {
 public:
  held_follow(int port, const std::string& token, const std::string& id)
    : http_(std::make_unique<httplib::Client>("127.0.0.1", port)) {
    http_->set_read_timeout(60, 0);
    thread_ = std::thread{[this, token, id] {
      auto r = http_->Get(
        "/v1/executions/" + id + "/events?follow=true", bearer(token),
        [this](const httplib::Response& res) {
          std::lock_guard<std::mutex> guard{mtx_};
          status_ = res.status;
          cv_.notify_all();
          return true;
        },
        [this](const char* data, std::size_t size) {
          std::lock_guard<std::mutex> guard{mtx_};
          body_.append(data, size);
          return true;
        });
      std::lock_guard<std::mutex> guard{mtx_};
      ended_ = true;
      cv_.notify_all();
    }};
  }

  ~held_follow() {
    leave();
  }

  /// The answer's status, once its head came (the follow is then counted).
  int status() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_for(guard, 20s, [this] {
      return status_ != 0 || ended_;
    });
    return status_;
  }

  /// Waits until the server ended the stream; returns what it sent.
  std::string ended() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_for(guard, 30s, [this] {
      return ended_;
    });
    return ended_ ? body_ : std::string{};
  }

  /// Closes the connection (the client leaves).
  void leave() {
    if (!thread_.joinable()) return;
    http_->stop();
    thread_.join();
  }

 private:
  std::unique_ptr<httplib::Client> http_;
  std::mutex mtx_;
  std::condition_variable cv_;
  int status_ = 0;
  bool ended_ = false;
  std::string body_;
  std::thread thread_;
};

/// The status of a follow of `id` by `token`, closed as soon as its head
/// came (nothing stays counted).
int probe_follow(int port, const std::string& token, const std::string& id) {
  httplib::Client http{"127.0.0.1", port};
  http.set_read_timeout(10, 0);
  int status = 0;
  http.Get(
    "/v1/executions/" + id + "/events?follow=true", bearer(token),
    [&status](const httplib::Response& res) {
      status = res.status;
      return false;
    },
    [](const char*, std::size_t) {
      return false;
    });
  return status;
}

/// Starts an order that waits for an approval, as `token`.
void start_order(limited_node& s, const std::string& token,
                 const std::string& id) {
  auto order = json{{"order_id", id},
                    {"amount", 1500},
                    {"items", {{{"sku", "a"}, {"qty", 1}}}}}
                 .dump();
  auto r = s.node.cli(
    {"--token", token, "start", "order", "--id", id, "--input", order});
  INFO(r.output);
  REQUIRE(r.code == 0);
}

} // namespace

TEST_CASE("an HTTP client at its principal's limit of waiting requests gets "
          "429 while another token is served, and is served again once its "
          "waits ended") {
  limited_node s;
  auto a = s.make("starter-a", "starter");
  auto b = s.make("starter-b", "starter");
  auto ops = s.make("ops", "operator");
  start_order(s, ops, "w-1");
  auto port = s.node.http_port;
  held_follow first{port, a, "w-1"};
  held_follow second{port, a, "w-1"};
  REQUIRE(first.status() == 200);
  REQUIRE(second.status() == 200);

  httplib::Client http{"127.0.0.1", port};
  http.set_read_timeout(10, 0);
  // A third follow, and a start that would wait, are refused at once.
  auto third = http.Get("/v1/executions/w-1/events?follow=true", bearer(a));
  REQUIRE(third);
  CHECK(third->status == 429);
  auto error = json::parse(third->body)["error"];
  CHECK(error["code"] == "overloaded");
  auto message = error["message"].get<std::string>();
  CHECK(message.find("'starter-a'") != std::string::npos);
  CHECK(message.find("2 waiting requests") != std::string::npos);
  CHECK(message.find("--max-waits-per-principal") != std::string::npos);
  auto input = json{{"order_id", "w-2"},
                    {"amount", 10},
                    {"items", {{{"sku", "a"}, {"qty", 1}}}}}
                 .dump();
  auto waiting_start
    = http.Post("/v1/workflows/order/executions?wait=true&id=w-2", bearer(a),
                input, "application/json");
  REQUIRE(waiting_start);
  CHECK(waiting_start->status == 429);
  // Refused before the start: no execution w-2.
  auto w2 = http.Get("/v1/executions/w-2", bearer(a));
  REQUIRE(w2);
  CHECK(w2->status == 404);
  // The count is the node's, over HTTP and gRPC alike.
  {
    auto channel
      = grpc::CreateChannel("127.0.0.1:" + std::to_string(s.node.grpc_port),
                            grpc::InsecureChannelCredentials());
    auto admin = cerebelum::admin::AdminService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + a);
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    cerebelum::admin::WaitForResultRequest req;
    req.set_execution_id("w-1");
    req.set_timeout_ms(5000);
    cerebelum::admin::ExecutionInfo res;
    auto st = admin->WaitForResult(&ctx, req, &res);
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // What does not wait is still served to the same token.
  auto shown = http.Get("/v1/executions/w-1", bearer(a));
  REQUIRE(shown);
  CHECK(shown->status == 200);
  // The limit is per principal: another token is served.
  CHECK(probe_follow(port, b, "w-1") == 200);

  // The client of one follow leaves: its place is free again.
  first.leave();
  CHECK(eventually([&] {
    return probe_follow(port, a, "w-1") == 200;
  }));
  // The other follow is answered (the execution ends): its place too.
  // (order sleeps 2 s before it asks for approval.)
  CHECK(eventually([&] {
    return s.node.cli({"--token", ops, "show", "w-1", "--json"})
             .json()["status"]
           == "awaiting_approval";
  }));
  auto approved = s.node.cli({"--token", ops, "approve", "w-1", "--by", "ops"});
  INFO(approved.output);
  REQUIRE(approved.code == 0);
  CHECK(second.ended().find("event: end") != std::string::npos);
  held_follow again1{port, a, "w-1"};
  held_follow again2{port, a, "w-1"};
  CHECK(again1.status() == 200);
  CHECK(again2.status() == 200);
  auto waited = http.Post(
    "/v1/workflows/order/executions?wait=true&timeout_ms=1000&id=w-3",
    bearer(a), input, "application/json");
  REQUIRE(waited);
  // Served: the execution ended (201) or the wait timed out (504).
  CHECK(waited->status != 429);
}

TEST_CASE("a worker token at its limit of pending task polls gets "
          "RESOURCE_EXHAUSTED while another token is served, and is served "
          "again once its polls were cancelled") {
  limited_node s;
  auto a = s.make("worker-a", "worker");
  auto b = s.make("worker-b", "worker");
  auto channel
    = grpc::CreateChannel("127.0.0.1:" + std::to_string(s.node.grpc_port),
                          grpc::InsecureChannelCredentials());
  auto stub = cerebelum::worker::WorkerService::NewStub(channel);
  auto with_token = [](grpc::ClientContext& ctx, const std::string& token) {
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
  };
  for (auto [token, worker] : {std::pair{a, "wa"}, std::pair{b, "wb"}}) {
    grpc::ClientContext ctx;
    with_token(ctx, token);
    cerebelum::worker::RegisterRequest req;
    req.set_worker_id(worker);
    req.add_queues("idle-queue");
    cerebelum::worker::RegisterResponse res;
    auto st = stub->Register(&ctx, req, &res);
    INFO(st.error_message());
    REQUIRE(st.ok());
  }
  auto poll = [&](const std::string& token, const std::string& worker) {
    grpc::ClientContext ctx;
    with_token(ctx, token);
    cerebelum::worker::PollTaskRequest req;
    req.set_worker_id(worker);
    req.set_wait_ms(20);
    cerebelum::worker::PollTaskResponse res;
    return stub->PollTask(&ctx, req, &res);
  };

  // Two long-polls of token a, pending on an empty queue.
  struct pending {
    grpc::ClientContext ctx;
    cerebelum::worker::PollTaskRequest req;
    cerebelum::worker::PollTaskResponse res;
    std::atomic<bool> done{false};
  };
  std::vector<std::unique_ptr<pending>> polls;
  for (int i = 0; i < 2; ++i) {
    auto p = std::make_unique<pending>();
    with_token(p->ctx, a);
    p->req.set_worker_id("wa");
    p->req.set_wait_ms(50'000);
    stub->async()->PollTask(&p->ctx, &p->req, &p->res,
                            [raw = p.get()](grpc::Status) {
                              raw->done = true;
                            });
    polls.push_back(std::move(p));
  }
  grpc::Status refused;
  CHECK(eventually([&] {
    refused = poll(a, "wa");
    return refused.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }));
  CHECK(refused.error_message().find("'worker-a'") != std::string::npos);
  CHECK(refused.error_message().find("--max-waits-per-principal")
        != std::string::npos);
  // Another token is served.
  CHECK(poll(b, "wb").ok());

  for (auto& p : polls)
    p->ctx.TryCancel();
  CHECK(eventually([&] {
    return polls[0]->done && polls[1]->done;
  }));
  CHECK(eventually([&] {
    return poll(a, "wa").ok();
  }));
}
