// The WorkerService over a real in-process gRPC server and a real task
// router: how long-polls end when the server stops.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <memory>

#include "actors/engine_context.hpp"
#include "actors/function_registry.hpp"
#include "actors/task_router.hpp"
#include "src/bridges/worker_service.hpp"

using namespace cerebelum;
using namespace std::chrono_literals;

namespace {

/// A node's task router on an actor system with one scheduler thread, the
/// WorkerService over it on an in-process gRPC server, and a client.
struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  actors::context_ptr ctx;
  actors::task_router_actor router;
  std::shared_ptr<api::worker_service> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<worker::WorkerService::Stub> stub;

  fixture() {
    cfg.set("scheduler.policy", caf::atom("sharing"));
    cfg.set("scheduler.max-threads", 1);
    sys = std::make_unique<caf::actor_system>(cfg);
    ctx = std::make_shared<actors::engine_context>(
      std::make_shared<actors::function_registry>(), actors::engine_options{},
      1);
    router = actors::spawn_task_router(*sys, ctx, actors::router_options{});
    service = std::make_shared<api::worker_service>(
      std::make_shared<const actors::task_api>(router));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service.get());
    server = builder.BuildAndStart();
    stub = worker::WorkerService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }

  ~fixture() {
    server->Shutdown(std::chrono::system_clock::now() + 2s);
    server->Wait();
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    router = nullptr;
    sys.reset();
  }

  /// Registers worker `w` for queue "q".
  void register_worker(const std::string& w) {
    grpc::ClientContext ctx;
    worker::RegisterRequest req;
    req.set_worker_id(w);
    req.add_queues("q");
    worker::RegisterResponse res;
    REQUIRE(stub->Register(&ctx, req, &res).ok());
  }

  /// A long-poll of worker `w` for queue "q", answered on another thread.
  std::future<grpc::Status> poll(const std::string& w) {
    return std::async(std::launch::async, [this, w] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 60s);
      worker::PollTaskRequest req;
      req.set_worker_id(w);
      req.set_wait_ms(30000);
      worker::PollTaskResponse res;
      return stub->PollTask(&ctx, req, &res);
    });
  }
};

/// Occupies the actor system's only scheduler thread until `release`.
struct blocked_scheduler {
  std::promise<void> entered;
  std::promise<void> release;

  explicit blocked_scheduler(caf::actor_system& sys) {
    auto on = std::make_shared<std::shared_future<void>>(
      release.get_future().share());
    auto blocker = sys.spawn([this, on](caf::event_based_actor* self) {
      self->quit();
      entered.set_value();
      on->wait();
    });
    REQUIRE(entered.get_future().wait_for(10s) == std::future_status::ready);
  }

  ~blocked_scheduler() {
    release.set_value();
  }
};

} // namespace

TEST_CASE("the server's stop ends a pending long-poll with UNAVAILABLE "
          "without waiting for the task router") {
  fixture fx;
  fx.register_worker("w");
  auto pending = fx.poll("w");
  REQUIRE(pending.wait_for(300ms) == std::future_status::timeout);
  // The router cannot run (as when the node's scheduler threads are all
  // busy while it stops): the poll must end all the same.
  blocked_scheduler busy{*fx.sys};
  auto began = std::chrono::steady_clock::now();
  fx.service->stop_polls();
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  auto st = pending.get();
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(st.error_message(), Catch::Contains("PollTask"));
  CHECK(std::chrono::steady_clock::now() - began < 2s);
  // A poll that arrives after the stop ends the same way, at once.
  auto late = fx.poll("w");
  REQUIRE(late.wait_for(5s) == std::future_status::ready);
  CHECK(late.get().error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("pending long-polls end with UNAVAILABLE at the server's stop while "
          "the router runs") {
  // The router's answers to the cancelled polls come after the calls were
  // finished by the stop; each reactor lives until both are done.
  fixture fx;
  fx.register_worker("w");
  std::vector<std::future<grpc::Status>> polls;
  for (int i = 0; i < 8; ++i)
    polls.push_back(fx.poll("w"));
  for (auto& p : polls)
    REQUIRE(p.wait_for(100ms) == std::future_status::timeout);
  fx.service->stop_polls();
  for (auto& p : polls) {
    REQUIRE(p.wait_for(5s) == std::future_status::ready);
    CHECK(p.get().error_code() == grpc::StatusCode::UNAVAILABLE);
  }
}
