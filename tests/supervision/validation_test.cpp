// Invalid child specs and flags are rejected up front with named errors.

#include <catch2/catch.hpp>

#include "tests/supervision/test_support.hpp"

using namespace cerebelum::supervision;
using namespace cerebelum::supervision::test;

namespace {

supervisor_config one_child(child_spec spec) {
  supervisor_config cfg;
  cfg.name = "sup";
  cfg.children.push_back(std::move(spec));
  return cfg;
}

} // namespace

TEST_CASE("a child spec with an empty id is rejected") {
  fixture fx;
  auto res = spawn_supervisor(fx.sys, one_child(fx.worker("")));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::empty_child_id));
}

TEST_CASE("two child specs with the same id are rejected") {
  fixture fx;
  auto cfg = one_child(fx.worker("a"));
  cfg.children.push_back(fx.worker("a"));
  auto res = spawn_supervisor(fx.sys, std::move(cfg));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::duplicate_child_id));
  CHECK(fx.log->events().empty());
}

TEST_CASE("a child spec without a start function is rejected") {
  fixture fx;
  auto spec = fx.worker("a");
  spec.start = nullptr;
  auto res = spawn_supervisor(fx.sys, one_child(std::move(spec)));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::missing_start_function));
}

TEST_CASE("a negative shutdown timeout is rejected") {
  fixture fx;
  auto spec = fx.worker("a");
  spec.shutdown = shutdown_timeout(std::chrono::milliseconds{-1});
  auto res = spawn_supervisor(fx.sys, one_child(std::move(spec)));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::invalid_shutdown));
}

TEST_CASE("an unknown shutdown policy, restart type or child type is "
          "rejected") {
  fixture fx;
  auto bad_shutdown = fx.worker("a");
  bad_shutdown.shutdown = shutdown_policy{static_cast<shutdown_policy::kind>(9),
                                          {}};
  CHECK(is(validate(bad_shutdown), errc::invalid_shutdown));
  auto bad_restart = fx.worker("a");
  bad_restart.restart = static_cast<restart_type>(9);
  CHECK(is(validate(bad_restart), errc::invalid_restart_type));
  auto bad_type = fx.worker("a");
  bad_type.type = static_cast<child_type>(9);
  CHECK(is(validate(bad_type), errc::invalid_child_type));
}

TEST_CASE("bad supervisor flags are rejected") {
  fixture fx;
  auto cfg = one_child(fx.worker("a"));
  cfg.flags.intensity = -1;
  CHECK(is(validate(cfg), errc::invalid_intensity));
  cfg.flags.intensity = 1;
  cfg.flags.period = std::chrono::milliseconds{0};
  CHECK(is(validate(cfg), errc::invalid_period));
  cfg.flags.period = std::chrono::seconds{5};
  cfg.flags.strategy = static_cast<restart_strategy>(9);
  CHECK(is(validate(cfg), errc::invalid_strategy));
  cfg.flags.strategy = restart_strategy::simple_one_for_one;
  cfg.children.push_back(fx.worker("b"));
  CHECK(is(validate(cfg), errc::invalid_simple_spec));
  cfg.children.pop_back();
  CHECK_FALSE(validate(cfg));
}

TEST_CASE("start_child rejects an invalid spec with a named error") {
  fixture fx;
  auto sup = fx.start(one_child(fx.worker("a")));
  auto spec = fx.worker("b");
  spec.shutdown = shutdown_timeout(std::chrono::milliseconds{-5});
  auto res = start_child(fx.self, sup, std::move(spec));
  REQUIRE_FALSE(res);
  CHECK(is(res.error(), errc::invalid_shutdown));
  CHECK_FALSE(fx.has_child(sup, "b"));
}

TEST_CASE("supervision errors render with their names") {
  fixture fx;
  auto text = fx.sys.render(make_error(errc::duplicate_child_id, "a"));
  CHECK(text == "supervise: duplicate_child_id (a)");
  CHECK(to_string(errc::reached_max_restart_intensity)
        == "reached_max_restart_intensity");
}

TEST_CASE("normal, user_shutdown and no reason are normal exits and the "
          "rest is abnormal") {
  CHECK(is_normal_exit(caf::error{}));
  CHECK(is_normal_exit(caf::exit_reason::normal));
  CHECK(is_normal_exit(caf::exit_reason::user_shutdown));
  CHECK_FALSE(is_normal_exit(caf::exit_reason::kill));
  CHECK_FALSE(is_normal_exit(caf::exit_reason::unhandled_exception));
  CHECK_FALSE(is_normal_exit(caf::sec::runtime_error));
  CHECK_FALSE(is_normal_exit(make_error(errc::reached_max_restart_intensity)));
}
