// Restart intensity (OTP's add_restart) and escalation through nested
// supervisors. Time comes from the fixture's clock, never from sleeping.

#include <catch2/catch.hpp>

#include <caf/send.hpp>

#include "supervision/restart_intensity.hpp"
#include "tests/supervision/test_support.hpp"

using namespace cerebelum::supervision;
using namespace cerebelum::supervision::test;
using namespace std::chrono_literals;
using strings = std::vector<std::string>;

namespace {

void crash(fixture& fx, const caf::actor& child) {
  fx.self->send(child, die_atom::value, caf::error{caf::sec::runtime_error});
}

supervisor_config config(fixture& fx, std::string name, int intensity,
                         std::vector<child_spec> children) {
  supervisor_config cfg;
  cfg.name = std::move(name);
  cfg.flags = flags(restart_strategy::one_for_one, intensity, fx.clock());
  cfg.children = std::move(children);
  return cfg;
}

} // namespace

TEST_CASE("the restart counter allows intensity restarts within the period "
          "and forgets restarts older than the period") {
  fixture fx;
  restart_intensity counter{1, 5s, fx.clock()};
  CHECK(counter.add_restart());
  fx.advance(1s);
  CHECK_FALSE(counter.add_restart());
  restart_intensity spread{1, 5s, fx.clock()};
  CHECK(spread.add_restart());
  fx.advance(6s);
  CHECK(spread.add_restart());
  CHECK(spread.size() == 1);
}

TEST_CASE("the restart window includes its boundary as in OTP") {
  fixture fx;
  restart_intensity counter{1, 5s, fx.clock()};
  CHECK(counter.add_restart());
  fx.advance(5s);
  CHECK_FALSE(counter.add_restart());
}

TEST_CASE("intensity zero gives up on the first restart") {
  fixture fx;
  restart_intensity counter{0, 5s, fx.clock()};
  CHECK_FALSE(counter.add_restart());
}

TEST_CASE("more than intensity restarts within the period stop all children "
          "in reverse order and the supervisor exits") {
  fixture fx;
  auto sup = fx.start(
    config(fx, "sup", 1, {fx.worker("a"), fx.worker("b"), fx.worker("c")}));
  fx.self->monitor(sup);
  crash(fx, fx.await_start("b"));
  auto b2 = fx.await_start("b", 2);
  crash(fx, b2);
  auto reason = fx.await_down(sup);
  CHECK(is(reason, errc::reached_max_restart_intensity));
  CHECK(fx.log->events()
        == strings{"start:a", "start:b", "start:c", "exit:b", "start:b",
                   "exit:b", "stop:c", "stop:a"});
}

TEST_CASE("restarts spread over more than the period do not exhaust the "
          "intensity") {
  fixture fx;
  auto sup = fx.start(config(fx, "sup", 1, {fx.worker("a")}));
  crash(fx, fx.await_start("a"));
  auto a2 = fx.await_start("a", 2);
  fx.advance(6s);
  crash(fx, a2);
  auto a3 = fx.await_start("a", 3);
  CHECK(fx.child(sup, "a").child == a3);
  auto counts = count_children(fx.self, sup);
  REQUIRE(counts);
  CHECK(counts->active == 1);
}

TEST_CASE("a nested supervisor that reaches its intensity escalates to its "
          "parent, which restarts it") {
  fixture fx;
  auto inner = config(fx, "inner", 0, {fx.worker("x")});
  auto root = fx.start(
    config(fx, "root", 5, {fx.worker("a"), supervisor_spec("inner", inner)}));
  auto inner1 = fx.child(root, "inner").child;
  fx.self->monitor(inner1);
  crash(fx, fx.await_start("x"));
  CHECK(is(fx.await_down(inner1), errc::reached_max_restart_intensity));
  fx.await_start("x", 2);
  fx.wait_replaced(root, "inner", inner1);
  auto inner2 = fx.child(root, "inner");
  CHECK(inner2.status == child_status::running);
  CHECK(inner2.child != inner1);
  CHECK(fx.log->count("start:a") == 1);
}

TEST_CASE("escalation goes up the tree until a supervisor with intensity "
          "left handles it") {
  fixture fx;
  auto inner = config(fx, "inner", 0, {fx.worker("x")});
  auto middle = config(fx, "middle", 0, {supervisor_spec("inner", inner)});
  auto root = fx.start(config(
    fx, "root", 0,
    {fx.worker("a"), supervisor_spec("middle", middle), fx.worker("b")}));
  fx.self->monitor(root);
  crash(fx, fx.await_start("x"));
  // inner gives up, middle gives up, root (intensity 0) gives up as well.
  CHECK(is(fx.await_down(root), errc::reached_max_restart_intensity));
  CHECK(
    fx.log->events()
    == strings{"start:a", "start:x", "start:b", "exit:x", "stop:b", "stop:a"});
}

TEST_CASE("a supervisor killed abruptly takes its children with it") {
  fixture fx;
  auto sup = fx.start(config(fx, "sup", 1, {fx.worker("a")}));
  auto a = fx.await_start("a");
  fx.self->monitor(a);
  fx.self->monitor(sup);
  caf::anon_send_exit(sup, caf::exit_reason::kill);
  CHECK(fx.await_down(sup) == caf::exit_reason::kill);
  CHECK(fx.await_down(a) == caf::exit_reason::kill);
}
