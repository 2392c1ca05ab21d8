// simple_one_for_one: dynamic children of one template, started with
// arguments, found by handle; many thousands of them.

#include <atomic>

#include <catch2/catch.hpp>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "tests/supervision/test_support.hpp"

using namespace cerebelum::supervision;
using namespace cerebelum::supervision::test;

namespace {

supervisor_config config(fixture& fx, child_spec spec, int intensity = 10) {
  supervisor_config cfg;
  cfg.name = "dyn";
  cfg.flags = flags(restart_strategy::simple_one_for_one, intensity,
                    fx.clock());
  cfg.children.push_back(std::move(spec));
  return cfg;
}

caf::actor start_dynamic(fixture& fx, const caf::actor& sup,
                         const std::string& id) {
  auto child = start_child(fx.self, sup, caf::make_message(id));
  REQUIRE(child);
  return *child;
}

// Function actors here take an argument: spawning one without arguments
// trips UBSan inside CAF 0.17.6 (init_fun_factory dereferences an empty
// shared_ptr<tuple<>>).
caf::behavior tiny_child(caf::event_based_actor*, int) {
  return {
    [](int x) {
      return x;
    },
  };
}

} // namespace

TEST_CASE("simple_one_for_one starts children with the arguments of "
          "start_child") {
  fixture fx;
  auto sup = fx.start(config(fx, fx.dynamic_worker(restart_type::transient)));
  auto w1 = start_dynamic(fx, sup, "w1");
  auto w2 = start_dynamic(fx, sup, "w2");
  CHECK(fx.await_start("w1") == w1);
  CHECK(fx.await_start("w2") == w2);
  auto counts = count_children(fx.self, sup);
  REQUIRE(counts);
  CHECK(counts->specs == 1);
  CHECK(counts->active == 2);
  CHECK(counts->workers == 2);
  CHECK(fx.children(sup).size() == 2);
}

TEST_CASE("a transient dynamic child is restarted with its arguments after "
          "an abnormal exit and forgotten after a normal one") {
  fixture fx;
  auto sup = fx.start(config(fx, fx.dynamic_worker(restart_type::transient)));
  auto w1 = start_dynamic(fx, sup, "w1");
  auto w2 = start_dynamic(fx, sup, "w2");
  fx.self->send(w1, die_atom::value, caf::error{caf::sec::runtime_error});
  auto w1b = fx.await_start("w1", 2);
  CHECK(w1b != w1);
  fx.self->send(w2, die_atom::value, caf::error{});
  fx.wait_until(sup, [](const std::vector<child_info>& xs) {
    return xs.size() == 1;
  });
  CHECK(fx.children(sup).at(0).child == w1b);
  CHECK(fx.log->count("start:w2") == 1);
}

TEST_CASE("a permanent dynamic child is restarted even after a normal "
          "exit") {
  fixture fx;
  auto sup = fx.start(config(fx, fx.dynamic_worker(restart_type::permanent)));
  auto w1 = start_dynamic(fx, sup, "w1");
  fx.self->send(w1, die_atom::value, caf::error{});
  CHECK(fx.await_start("w1", 2) != w1);
}

TEST_CASE("a temporary dynamic child is never restarted") {
  fixture fx;
  auto sup = fx.start(config(fx, fx.dynamic_worker(restart_type::temporary)));
  auto w1 = start_dynamic(fx, sup, "w1");
  fx.self->send(w1, die_atom::value, caf::error{caf::sec::runtime_error});
  fx.wait_until(sup, [](const std::vector<child_info>& xs) {
    return xs.empty();
  });
  CHECK(fx.log->count("start:w1") == 1);
}

TEST_CASE("dynamic children exceeding the intensity stop the supervisor") {
  fixture fx;
  auto sup
    = fx.start(config(fx, fx.dynamic_worker(restart_type::permanent), 1));
  fx.self->monitor(sup);
  auto w1 = start_dynamic(fx, sup, "w1");
  auto w2 = start_dynamic(fx, sup, "w2");
  fx.self->monitor(w2);
  fx.self->send(w1, die_atom::value, caf::error{caf::sec::runtime_error});
  auto w1b = fx.await_start("w1", 2);
  fx.self->send(w1b, die_atom::value, caf::error{caf::sec::runtime_error});
  CHECK(is(fx.await_down(sup), errc::reached_max_restart_intensity));
  CHECK(fx.await_down(w2) == caf::exit_reason::user_shutdown);
}

TEST_CASE("terminate_child stops one dynamic child by handle and rejects an "
          "unknown handle") {
  fixture fx;
  auto sup = fx.start(config(fx, fx.dynamic_worker(restart_type::permanent)));
  auto w1 = start_dynamic(fx, sup, "w1");
  auto w2 = start_dynamic(fx, sup, "w2");
  fx.self->monitor(w1);
  REQUIRE_FALSE(terminate_child(fx.self, sup, w1));
  CHECK(fx.await_down(w1) == caf::exit_reason::user_shutdown);
  auto xs = fx.children(sup);
  REQUIRE(xs.size() == 1);
  CHECK(xs[0].child == w2);
  CHECK(is(terminate_child(fx.self, sup, w1), errc::not_found));
  CHECK(fx.log->count("start:w1") == 1);
}

TEST_CASE("operations for static children are refused by a "
          "simple_one_for_one supervisor") {
  fixture fx;
  auto sup = fx.start(config(fx, fx.dynamic_worker(restart_type::permanent)));
  auto started = start_child(fx.self, sup, fx.worker("a"));
  REQUIRE_FALSE(started);
  CHECK(is(started.error(), errc::simple_one_for_one));
  auto restarted = restart_child(fx.self, sup, "worker");
  REQUIRE_FALSE(restarted);
  CHECK(is(restarted.error(), errc::simple_one_for_one));
  CHECK(is(delete_child(fx.self, sup, "worker"), errc::simple_one_for_one));
  CHECK(is(terminate_child(fx.self, sup, "worker"), errc::simple_one_for_one));
  auto bad_args = start_child(fx.self, sup, caf::make_message(42));
  REQUIRE_FALSE(bad_args);
  CHECK(is(bad_args.error(), errc::failed_to_start_child));
}

TEST_CASE("an event-based actor starts a dynamic child with the "
          "non-blocking helper") {
  fixture fx;
  auto sup = fx.start(config(fx, fx.dynamic_worker(restart_type::transient)));
  caf::actor observer = fx.self;
  auto client = fx.sys.spawn(
    [](caf::event_based_actor* self, caf::actor sup, caf::actor observer) {
      request_start_child(self, sup, caf::make_message(std::string{"w9"}))
        .then([self, observer](caf::actor& child) {
          self->send(observer, std::string{"child"}, child);
        });
    },
    sup, observer);
  caf::actor child;
  fx.self->receive(
    [&](const std::string&, caf::actor& x) {
      child = x;
    },
    caf::after(guard_timeout) >>
      [] {
        FAIL("no reply");
      });
  CHECK(child == fx.await_start("w9"));
}

TEST_CASE("ten thousand dynamic children start and stop") {
  constexpr int n = 10000;
  fixture fx;
  child_spec spec;
  spec.id = "tiny";
  spec.restart = restart_type::transient;
  spec.start = [](caf::actor_system& sys,
                  const caf::message&) -> caf::expected<caf::actor> {
    return sys.spawn(tiny_child, 0);
  };
  auto sup = fx.start(config(fx, std::move(spec)));
  std::vector<caf::actor> children;
  children.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto child = start_child(fx.self, sup, caf::make_message(i));
    REQUIRE(child);
    children.push_back(*child);
    fx.self->monitor(*child);
  }
  auto counts = count_children(fx.self, sup);
  REQUIRE(counts);
  CHECK(counts->active == static_cast<size_t>(n));
  fx.self->monitor(sup);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(sup) == caf::exit_reason::user_shutdown);
  size_t stopped = 0;
  for (auto& child : children)
    if (fx.await_down(child) == caf::exit_reason::user_shutdown) ++stopped;
  CHECK(stopped == static_cast<size_t>(n));
}

TEST_CASE("a dynamic child whose restart fails is listed as restarting until "
          "a retry succeeds") {
  fixture fx;
  auto allow = std::make_shared<std::atomic<bool>>(true);
  auto spec = fx.dynamic_worker(restart_type::permanent);
  spec.start = [allow, start = spec.start](
                 caf::actor_system& sys,
                 const caf::message& args) -> caf::expected<caf::actor> {
    if (!allow->load())
      return caf::make_error(caf::sec::runtime_error, "not now");
    return start(sys, args);
  };
  auto sup = fx.start(config(fx, std::move(spec), 1000000));
  auto w1 = start_dynamic(fx, sup, "w1");
  allow->store(false);
  fx.self->send(w1, die_atom::value, caf::error{caf::sec::runtime_error});
  fx.wait_until(sup, [](const std::vector<child_info>& xs) {
    return xs.size() == 1 && xs[0].status == child_status::restarting;
  });
  auto counts = count_children(fx.self, sup);
  REQUIRE(counts);
  CHECK(counts->active == 0);
  CHECK(counts->workers == 1);
  allow->store(true);
  auto w1b = fx.await_start("w1", 2);
  fx.wait_until(sup, [&](const std::vector<child_info>& xs) {
    return xs.size() == 1 && xs[0].child == w1b;
  });
}

TEST_CASE("dynamic children that hang on shutdown are all killed after the "
          "shutdown timeout") {
  fixture fx;
  auto spec = fx.dynamic_worker(restart_type::transient, {true, true});
  spec.shutdown = shutdown_timeout(std::chrono::milliseconds{50});
  auto sup = fx.start(config(fx, std::move(spec)));
  std::vector<caf::actor> children;
  for (auto id : {"w1", "w2", "w3"}) {
    children.push_back(start_dynamic(fx, sup, id));
    fx.self->monitor(children.back());
  }
  fx.self->monitor(sup);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(sup) == caf::exit_reason::user_shutdown);
  for (auto& child : children)
    CHECK(fx.await_down(child) == caf::exit_reason::kill);
  CHECK(fx.log->count("ignored:w1") == 1);
}

TEST_CASE("brutal_kill stops dynamic children at once") {
  fixture fx;
  auto spec = fx.dynamic_worker(restart_type::permanent, {true, true});
  spec.shutdown = brutal_kill();
  auto sup = fx.start(config(fx, std::move(spec)));
  auto w1 = start_dynamic(fx, sup, "w1");
  fx.self->monitor(w1);
  fx.self->monitor(sup);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(sup) == caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(w1) == caf::exit_reason::kill);
  CHECK(fx.log->count("ignored:w1") == 0);
}
