// Which siblings a restart affects: one_for_one, one_for_all, rest_for_one.

#include <catch2/catch.hpp>

#include "tests/supervision/test_support.hpp"

using namespace cerebelum::supervision;
using namespace cerebelum::supervision::test;
using strings = std::vector<std::string>;

namespace {

supervisor_config config(fixture& fx, restart_strategy strategy,
                         std::vector<child_spec> children) {
  supervisor_config cfg;
  cfg.name = "sup";
  cfg.flags = flags(strategy, 10, fx.clock());
  cfg.children = std::move(children);
  return cfg;
}

void crash(fixture& fx, const caf::actor& child) {
  fx.self->send(child, die_atom::value, caf::error{caf::sec::runtime_error});
}

/// Events after the initial starts.
strings events_after(fixture& fx, size_t skip) {
  auto xs = fx.log->events();
  return strings(xs.begin() + static_cast<ptrdiff_t>(skip), xs.end());
}

} // namespace

TEST_CASE("one_for_one restarts only the child that crashed") {
  fixture fx;
  auto sup = fx.start(config(fx, restart_strategy::one_for_one,
                             {fx.worker("a"), fx.worker("b"), fx.worker("c")}));
  auto a = fx.await_start("a");
  auto b = fx.await_start("b");
  auto c = fx.await_start("c");
  crash(fx, b);
  auto b2 = fx.await_start("b", 2);
  CHECK(b2 != b);
  CHECK(events_after(fx, 3) == strings{"exit:b", "start:b"});
  CHECK(fx.child(sup, "a").child == a);
  CHECK(fx.child(sup, "c").child == c);
}

TEST_CASE("one_for_all stops the other children in reverse order and "
          "restarts all of them in order") {
  fixture fx;
  auto sup = fx.start(config(fx, restart_strategy::one_for_all,
                             {fx.worker("a"), fx.worker("b"), fx.worker("c")}));
  auto b = fx.await_start("b");
  crash(fx, b);
  fx.await_start("c", 2);
  CHECK(
    events_after(fx, 3)
    == strings{"exit:b", "stop:c", "stop:a", "start:a", "start:b", "start:c"});
  for (auto& x : fx.children(sup))
    CHECK(x.status == child_status::running);
}

TEST_CASE("rest_for_one restarts the crashed child and the children started "
          "after it") {
  fixture fx;
  auto sup = fx.start(
    config(fx, restart_strategy::rest_for_one,
           {fx.worker("a"), fx.worker("b"), fx.worker("c"), fx.worker("d")}));
  auto a = fx.await_start("a");
  auto b = fx.await_start("b");
  crash(fx, b);
  fx.await_start("d", 2);
  CHECK(
    events_after(fx, 4)
    == strings{"exit:b", "stop:d", "stop:c", "start:b", "start:c", "start:d"});
  CHECK(fx.child(sup, "a").child == a);
}

TEST_CASE("one_for_all removes a temporary sibling instead of restarting it") {
  fixture fx;
  auto sup = fx.start(config(
    fx, restart_strategy::one_for_all,
    {fx.worker("a"), fx.worker("t", restart_type::temporary), fx.worker("c")}));
  auto a = fx.await_start("a");
  crash(fx, a);
  fx.await_start("c", 2);
  CHECK(events_after(fx, 3)
        == strings{"exit:a", "stop:c", "stop:t", "start:a", "start:c"});
  CHECK_FALSE(fx.has_child(sup, "t"));
}

TEST_CASE("a transient child that exits normally does not disturb its "
          "siblings under one_for_all") {
  fixture fx;
  auto sup = fx.start(
    config(fx, restart_strategy::one_for_all,
           {fx.worker("a"), fx.worker("b", restart_type::transient)}));
  auto a = fx.await_start("a");
  auto b = fx.await_start("b");
  fx.self->send(b, die_atom::value, caf::error{});
  fx.wait_replaced(sup, "b", b);
  CHECK(fx.child(sup, "a").child == a);
  CHECK(fx.child(sup, "b").status == child_status::undefined);
  CHECK(events_after(fx, 2) == strings{"exit:b"});
}
