// start_child, terminate_child, restart_child, delete_child, which_children
// and count_children on static supervisors, with OTP's error cases.

#include <atomic>

#include <catch2/catch.hpp>

#include "tests/supervision/test_support.hpp"

using namespace cerebelum::supervision;
using namespace cerebelum::supervision::test;

namespace {

supervisor_config config(fixture& fx, std::vector<child_spec> children,
                         int intensity = 10) {
  supervisor_config cfg;
  cfg.name = "sup";
  cfg.flags = flags(restart_strategy::one_for_one, intensity, fx.clock());
  cfg.children = std::move(children);
  return cfg;
}

std::vector<std::string> ids(const std::vector<child_info>& xs) {
  std::vector<std::string> result;
  for (auto& x : xs)
    result.push_back(x.id);
  return result;
}

} // namespace

TEST_CASE("start_child adds a running child at the end of the start order") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a")}));
  auto b = start_child(fx.self, sup, fx.worker("b"));
  REQUIRE(b);
  CHECK(*b == fx.await_start("b"));
  CHECK(ids(fx.children(sup)) == std::vector<std::string>{"a", "b"});
  CHECK(fx.child(sup, "b").status == child_status::running);
}

TEST_CASE("start_child with an id in use returns already_started or "
          "already_present") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a")}));
  auto res = start_child(fx.self, sup, fx.worker("a"));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::already_started));
  REQUIRE_FALSE(terminate_child(fx.self, sup, "a"));
  res = start_child(fx.self, sup, fx.worker("a"));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::already_present));
  CHECK(fx.log->count("start:a") == 1);
}

TEST_CASE("start_child with a failing start function returns "
          "failed_to_start_child and keeps nothing") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a")}));
  auto res = start_child(fx.self, sup, fx.failing("f"));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::failed_to_start_child));
  CHECK_FALSE(fx.has_child(sup, "f"));
}

TEST_CASE("terminate_child stops a child and keeps its spec and "
          "restart_child starts it again") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a"), fx.worker("b")}));
  auto a = fx.await_start("a");
  fx.self->monitor(a);
  REQUIRE_FALSE(terminate_child(fx.self, sup, "a"));
  CHECK(fx.await_down(a) == caf::exit_reason::user_shutdown);
  CHECK(fx.child(sup, "a").status == child_status::undefined);
  CHECK(fx.log->count("start:a") == 1); // a terminated child is not restarted
  CHECK_FALSE(terminate_child(fx.self, sup, "a")); // already stopped: ok
  auto a2 = restart_child(fx.self, sup, "a");
  REQUIRE(a2);
  CHECK(*a2 == fx.await_start("a", 2));
  auto again = restart_child(fx.self, sup, "a");
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::running));
}

TEST_CASE("terminate_child of a temporary child removes its spec") {
  fixture fx;
  auto sup = fx.start(
    config(fx, {fx.worker("a"), fx.worker("t", restart_type::temporary)}));
  REQUIRE_FALSE(terminate_child(fx.self, sup, "t"));
  CHECK_FALSE(fx.has_child(sup, "t"));
}

TEST_CASE("delete_child removes only a child that is not running") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a"), fx.worker("b")}));
  CHECK(is(delete_child(fx.self, sup, "a"), errc::running));
  REQUIRE_FALSE(terminate_child(fx.self, sup, "a"));
  CHECK_FALSE(delete_child(fx.self, sup, "a"));
  CHECK(ids(fx.children(sup)) == std::vector<std::string>{"b"});
  CHECK(is(delete_child(fx.self, sup, "a"), errc::not_found));
}

TEST_CASE("operations on an unknown id return not_found") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a")}));
  CHECK(is(terminate_child(fx.self, sup, "nope"), errc::not_found));
  auto res = restart_child(fx.self, sup, "nope");
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::not_found));
  CHECK(is(delete_child(fx.self, sup, "nope"), errc::not_found));
}

TEST_CASE("a child whose restart fails is restarting until a retry "
          "succeeds") {
  fixture fx;
  auto allow = std::make_shared<std::atomic<bool>>(true);
  auto spec = fx.worker("a");
  spec.start = [allow, start = spec.start](
                 caf::actor_system& sys,
                 const caf::message& args) -> caf::expected<caf::actor> {
    if (!allow->load())
      return caf::make_error(caf::sec::runtime_error, "not now");
    return start(sys, args);
  };
  auto sup = fx.start(config(fx, {std::move(spec)}, 1000000));
  auto a = fx.await_start("a");
  allow->store(false);
  fx.self->send(a, die_atom::value, caf::error{caf::sec::runtime_error});
  fx.wait_until(sup, [](const std::vector<child_info>& xs) {
    return xs.at(0).status == child_status::restarting;
  });
  auto res = restart_child(fx.self, sup, "a");
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::restarting));
  CHECK(is(delete_child(fx.self, sup, "a"), errc::restarting));
  allow->store(true);
  auto a2 = fx.await_start("a", 2);
  CHECK(fx.child(sup, "a").child == a2);
}

TEST_CASE("which_children and count_children describe workers and "
          "supervisors") {
  fixture fx;
  supervisor_config inner;
  inner.name = "inner";
  inner.children.push_back(fx.worker("x"));
  auto sup = fx.start(
    config(fx, {fx.worker("a"), supervisor_spec("inner", std::move(inner)),
                fx.worker("t", restart_type::transient)}));
  REQUIRE_FALSE(terminate_child(fx.self, sup, "t"));
  auto xs = fx.children(sup);
  REQUIRE(xs.size() == 3);
  CHECK(xs[0].type == child_type::worker);
  CHECK(xs[1].type == child_type::supervisor);
  CHECK(xs[1].status == child_status::running);
  CHECK(xs[2].status == child_status::undefined);
  CHECK_FALSE(xs[2].child);
  auto counts = count_children(fx.self, sup);
  REQUIRE(counts);
  CHECK(counts->specs == 3);
  CHECK(counts->active == 2);
  CHECK(counts->supervisors == 1);
  CHECK(counts->workers == 2);
}

TEST_CASE("the message-level API answers like the helper functions") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a")}));
  child_counts counts;
  fx.self->request(sup, caf::infinite, count_children_atom_v)
    .receive(
      [&](child_counts& x) {
        counts = x;
      },
      [](caf::error& err) {
        FAIL(caf::to_string(err));
      });
  CHECK(counts.active == 1);
  caf::error err;
  fx.self->request(sup, caf::infinite, delete_child_atom_v, std::string{"zzz"})
    .receive(
      [] {
        FAIL("deleted an unknown child");
      },
      [&](caf::error& x) {
        err = std::move(x);
      });
  CHECK(is(err, errc::not_found));
}

TEST_CASE("an unknown request is answered with unexpected_message and the "
          "supervisor keeps running") {
  fixture fx;
  auto sup = fx.start(config(fx, {fx.worker("a")}));
  caf::error err;
  fx.self->request(sup, caf::infinite, 42)
    .receive(
      [](int) {
        FAIL("answered an unknown request");
      },
      [&](caf::error& x) {
        err = std::move(x);
      });
  CHECK(err == caf::sec::unexpected_message);
  CHECK(fx.child(sup, "a").status == child_status::running);
}
