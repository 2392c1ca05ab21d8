// Start order, reverse stop order, start failures and shutdown policies.

#include <catch2/catch.hpp>

#include <caf/send.hpp>

#include "tests/supervision/test_support.hpp"

using namespace cerebelum::supervision;
using namespace cerebelum::supervision::test;
using strings = std::vector<std::string>;

namespace {

supervisor_config config(std::string name, std::vector<child_spec> children) {
  supervisor_config cfg;
  cfg.name = std::move(name);
  cfg.children = std::move(children);
  return cfg;
}

caf::error stop_gracefully(fixture& fx, const caf::actor& sup) {
  fx.self->monitor(sup);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  return fx.await_down(sup);
}

std::string context_of(const caf::error& err) {
  REQUIRE(err.context().size() == 1);
  REQUIRE(err.context().match_element<std::string>(0));
  return err.context().get_as<std::string>(0);
}

} // namespace

TEST_CASE("children start in order and stop in reverse order") {
  fixture fx;
  auto sup
    = fx.start(config("sup", {fx.worker("a"), fx.worker("b"), fx.worker("c")}));
  CHECK(fx.log->events() == strings{"start:a", "start:b", "start:c"});
  CHECK(stop_gracefully(fx, sup) == caf::exit_reason::user_shutdown);
  CHECK(
    fx.log->events()
    == strings{"start:a", "start:b", "start:c", "stop:c", "stop:b", "stop:a"});
}

TEST_CASE("a failed start of the third child fails the supervisor start and "
          "stops the first two in reverse order") {
  fixture fx;
  auto res = start_supervisor(fx.sys,
                              config("sup", {fx.worker("a"), fx.worker("b"),
                                             fx.failing("c"), fx.worker("d")}));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::failed_to_start_child));
  CHECK(context_of(res.error()).find("'c'") != std::string::npos);
  CHECK(fx.log->events()
        == strings{"start:a", "start:b", "fail:c", "stop:b", "stop:a"});
}

TEST_CASE("a nested supervisor starts all its children before the next "
          "sibling starts and stops them before earlier siblings stop") {
  fixture fx;
  auto inner = config("inner", {fx.worker("x"), fx.worker("y")});
  auto sup = fx.start(
    config("root", {fx.worker("a"), supervisor_spec("inner", std::move(inner)),
                    fx.worker("b")}));
  CHECK(fx.log->events()
        == strings{"start:a", "start:x", "start:y", "start:b"});
  auto nested = fx.child(sup, "inner");
  CHECK(nested.type == child_type::supervisor);
  CHECK(nested.status == child_status::running);
  CHECK(stop_gracefully(fx, sup) == caf::exit_reason::user_shutdown);
  CHECK(fx.log->events()
        == strings{"start:a", "start:x", "start:y", "start:b", "stop:b",
                   "stop:y", "stop:x", "stop:a"});
}

TEST_CASE("a failed start inside a nested supervisor fails the start of its "
          "parent") {
  fixture fx;
  auto inner = config("inner", {fx.worker("x"), fx.failing("y")});
  auto res = start_supervisor(
    fx.sys,
    config("root", {fx.worker("a"), supervisor_spec("inner", std::move(inner)),
                    fx.worker("b")}));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::failed_to_start_child));
  auto context = context_of(res.error());
  CHECK(context.find("'inner'") != std::string::npos);
  CHECK(context.find("'y'") != std::string::npos);
  CHECK(fx.log->events()
        == strings{"start:a", "start:x", "fail:y", "stop:x", "stop:a"});
}

TEST_CASE("a child that hangs on shutdown is killed after its timeout") {
  fixture fx;
  auto spec = fx.worker("a", restart_type::permanent, {true, true});
  spec.shutdown = shutdown_timeout(std::chrono::milliseconds{50});
  auto sup = fx.start(config("sup", {std::move(spec)}));
  auto child = fx.await_start("a");
  fx.self->monitor(child);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(stop_gracefully(fx, sup) == caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(child) == caf::exit_reason::kill);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds{50});
  CHECK(fx.log->count("ignored:a") == 1);
}

TEST_CASE("brutal_kill kills a child without an exit message it could trap") {
  fixture fx;
  auto spec = fx.worker("a", restart_type::permanent, {true, true});
  spec.shutdown = brutal_kill();
  auto sup = fx.start(config("sup", {std::move(spec)}));
  auto child = fx.await_start("a");
  fx.self->monitor(child);
  CHECK_FALSE(terminate_child(fx.self, sup, "a"));
  CHECK(fx.await_down(child) == caf::exit_reason::kill);
  CHECK(fx.log->count("ignored:a") == 0);
  CHECK(fx.child(sup, "a").status == child_status::undefined);
}

TEST_CASE("a child with shutdown infinity stops gracefully and is waited "
          "for") {
  fixture fx;
  auto spec = fx.worker("a");
  spec.shutdown = infinity();
  auto sup = fx.start(config("sup", {std::move(spec), fx.worker("b")}));
  auto child = fx.await_start("a");
  fx.self->monitor(child);
  CHECK(stop_gracefully(fx, sup) == caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(child) == caf::exit_reason::user_shutdown);
  CHECK(fx.log->events() == strings{"start:a", "start:b", "stop:b", "stop:a"});
}

TEST_CASE("a start function that returns no actor is ignored as in OTP") {
  fixture fx;
  child_spec ignored;
  ignored.id = "ignored";
  ignored.start = [](caf::actor_system&,
                     const caf::message&) -> caf::expected<caf::actor> {
    return caf::actor{};
  };
  auto sup = fx.start(config("sup", {std::move(ignored), fx.worker("a")}));
  auto info = fx.child(sup, "ignored");
  CHECK(info.status == child_status::undefined);
  CHECK_FALSE(info.child);
  CHECK(fx.child(sup, "a").status == child_status::running);
}

TEST_CASE("an exit from outside during terminate_child stops the supervisor "
          "once that child is down") {
  fixture fx;
  auto hanging = fx.worker("a", restart_type::permanent, {true, true});
  hanging.shutdown = shutdown_timeout(std::chrono::milliseconds{50});
  auto sup = fx.start(config("sup", {fx.worker("b"), std::move(hanging)}));
  auto a = fx.await_start("a");
  fx.self->monitor(a);
  fx.self->monitor(sup);
  fx.self->send(sup, terminate_child_atom_v, std::string{"a"});
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(sup) == caf::exit_reason::user_shutdown);
  CHECK(fx.await_down(a) == caf::exit_reason::kill);
  CHECK(fx.log->events()
        == strings{"start:b", "start:a", "ignored:a", "stop:b"});
}
