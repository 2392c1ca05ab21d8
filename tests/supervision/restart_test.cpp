// Restart semantics of static children per OTP: permanent always,
// transient only after an abnormal exit, temporary never (and removed), for
// each static strategy.

#include <catch2/catch.hpp>

#include <caf/send.hpp>

#include "tests/supervision/test_support.hpp"

using namespace cerebelum::supervision;
using namespace cerebelum::supervision::test;

namespace {

enum class exit_kind { normal, shutdown, abnormal, killed };

void make_exit(fixture& fx, const caf::actor& child, exit_kind kind) {
  switch (kind) {
    case exit_kind::normal:
      fx.self->send(child, die_atom::value, caf::error{});
      break;
    case exit_kind::shutdown:
      fx.self->send(child, die_atom::value,
                    caf::error{caf::exit_reason::user_shutdown});
      break;
    case exit_kind::abnormal:
      fx.self->send(child, die_atom::value,
                    caf::error{caf::sec::runtime_error});
      break;
    case exit_kind::killed:
      caf::anon_send_exit(child, caf::exit_reason::kill);
      break;
  }
}

/// Runs one child `a` of type `restart` under `strategy`, makes it exit and
/// checks whether it was restarted.
void check_restart(restart_strategy strategy, restart_type restart,
                   exit_kind kind, bool restarted) {
  CAPTURE(to_string(strategy));
  fixture fx;
  supervisor_config cfg;
  cfg.name = "sup";
  cfg.flags = flags(strategy, 10, fx.clock());
  cfg.children.push_back(fx.worker("a", restart));
  auto sup = fx.start(std::move(cfg));
  auto old = fx.await_start("a");
  make_exit(fx, old, kind);
  if (restarted) {
    auto fresh = fx.await_start("a", 2);
    CHECK(fresh != old);
    CHECK(fx.child(sup, "a").child == fresh);
    CHECK(fx.child(sup, "a").status == child_status::running);
    return;
  }
  fx.wait_replaced(sup, "a", old);
  CHECK(fx.log->count("start:a") == 1);
  if (restart == restart_type::temporary) {
    CHECK_FALSE(fx.has_child(sup, "a"));
  } else {
    CHECK(fx.child(sup, "a").status == child_status::undefined);
  }
}

auto static_strategies() {
  return Catch::Generators::values({restart_strategy::one_for_one,
                                    restart_strategy::one_for_all,
                                    restart_strategy::rest_for_one});
}

} // namespace

TEST_CASE("a permanent child is restarted after a normal exit") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::permanent, exit_kind::normal, true);
}

TEST_CASE("a permanent child is restarted after a shutdown exit") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::permanent, exit_kind::shutdown, true);
}

TEST_CASE("a permanent child is restarted after an abnormal exit") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::permanent, exit_kind::abnormal, true);
}

TEST_CASE("a transient child that exits normally is not restarted") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::transient, exit_kind::normal, false);
}

TEST_CASE("a transient child that exits with shutdown is not restarted") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::transient, exit_kind::shutdown, false);
}

TEST_CASE("a transient child that exits abnormally is restarted") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::transient, exit_kind::abnormal, true);
}

TEST_CASE("a transient child that is killed is restarted") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::transient, exit_kind::killed, true);
}

TEST_CASE("a temporary child that exits normally is removed, not restarted") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::temporary, exit_kind::normal, false);
}

TEST_CASE("a temporary child that exits with shutdown is removed, not "
          "restarted") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::temporary, exit_kind::shutdown, false);
}

TEST_CASE("a temporary child that exits abnormally is removed, not "
          "restarted") {
  auto strategy = GENERATE(static_strategies());
  check_restart(strategy, restart_type::temporary, exit_kind::abnormal, false);
}
