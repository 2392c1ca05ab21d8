// The task router actor through its facade (actors/task_api.hpp): typed
// requests from short-lived actors, answers delivered to callbacks, the
// router's own timer. No store: the router starts with no tasks.
#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <future>
#include <memory>

#include "actors/engine_context.hpp"
#include "actors/function_registry.hpp"
#include "actors/task_router.hpp"

using namespace cerebelum::actors;
using namespace std::chrono_literals;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  context_ptr ctx;
  task_router_actor router;
  std::shared_ptr<const task_api> api;

  fixture() {
    sys = std::make_unique<caf::actor_system>(cfg);
    ctx = std::make_shared<engine_context>(
      std::make_shared<function_registry>(), engine_options{}, 1);
    router = spawn_task_router(*sys, ctx, router_options{});
    api = std::make_shared<const task_api>(router);
  }

  ~fixture() {
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    router = nullptr;
    api.reset();
    sys.reset();
    ctx.reset();
  }

  /// Registers worker `w` for queue "q".
  void join(const std::string& w) {
    std::promise<task_result<registration_info>> p;
    worker_registration reg;
    reg.worker_id = w;
    reg.queues = {"q"};
    api->register_worker(reg, [&p](task_result<registration_info> r) {
      p.set_value(std::move(r));
    });
    auto f = p.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    REQUIRE(f.get());
  }
};

using poll_future = std::future<poll_reply>;

std::pair<poll_handle, poll_future> poll(const task_api& api,
                                         const std::string& w,
                                         std::chrono::milliseconds wait) {
  auto p = std::make_shared<std::promise<poll_reply>>();
  auto f = p->get_future();
  auto h = api.poll(w, {}, wait, [p](poll_reply r) {
    p->set_value(std::move(r));
  });
  return {h, std::move(f)};
}

} // namespace

TEST_CASE("a poll of an unregistered worker is answered unknown_worker") {
  fixture fx;
  auto [handle, f] = poll(*fx.api, "nobody", 30s);
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto r = f.get();
  REQUIRE(r.error);
  CHECK(r.error->code == task_errc::unknown_worker);
}

TEST_CASE("a cancelled poll is answered at once with no task") {
  fixture fx;
  fx.join("w");
  auto [handle, f] = poll(*fx.api, "w", 300s);
  handle.cancel();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto r = f.get();
  REQUIRE(r);
  CHECK_FALSE(*r.value);
}

TEST_CASE("a poll with nothing to take ends empty when the router's timer "
          "fires at its deadline") {
  fixture fx;
  fx.join("w");
  auto start = std::chrono::steady_clock::now();
  auto [handle, f] = poll(*fx.api, "w", 50ms);
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto r = f.get();
  REQUIRE(r);
  CHECK_FALSE(*r.value);
  CHECK(std::chrono::steady_clock::now() - start >= 50ms);
}

TEST_CASE("a heartbeat names what is wrong with its attempt token") {
  fixture fx;
  fx.join("w");
  std::promise<task_result<heartbeat_info>> p;
  fx.api->heartbeat("w", "not-a-token", "", [&p](auto r) {
    p.set_value(std::move(r));
  });
  auto f = p.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto r = f.get();
  REQUIRE(r.error);
  CHECK(r.error->code == task_errc::stale_token);
}

TEST_CASE("calls without a router are answered unavailable at once") {
  task_api api{task_router_actor{}};
  std::optional<task_result<std::uint32_t>> got;
  api.unregister("w", [&got](auto r) {
    got = std::move(r);
  });
  REQUIRE(got);
  REQUIRE(got->error);
  CHECK(got->error->code == task_errc::unavailable);
}

TEST_CASE("the router answers its figures") {
  fixture fx;
  caf::scoped_actor self{*fx.sys};
  std::uint64_t open = 99;
  self->request(fx.router, 10s, stats_atom::value)
    .receive(
      [&](std::uint64_t tasks, std::uint64_t, std::uint64_t) {
        open = tasks;
      },
      [&](caf::error&) {
        FAIL("no answer");
      });
  CHECK(open == 0);
}
