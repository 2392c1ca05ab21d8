// The engine's clock (actors/clock.hpp): the manual clock delivers a delayed
// message exactly when the test moves time past its moment, never before;
// the real clock delivers it after its delay.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/clock.hpp"

using namespace std::chrono_literals;
using cerebelum::actors::manual_clock;
using cerebelum::actors::real_clock;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  /// The int in the mailbox, if one is there now (does not wait).
  std::optional<int> take() {
    std::optional<int> got;
    self->receive(
      [&](int x) {
        got = x;
      },
      caf::after(0ms) >> [] {});
    return got;
  }
};

} // namespace

TEST_CASE("a message on the manual clock is delivered at its moment and not "
          "before") {
  fixture f;
  manual_clock clk;
  auto t0 = clk.now_ms();
  clk.send_after(f.self, 10s, 7);
  CHECK(clk.pending() == 1);
  CHECK(clk.next_due() == t0 + 10'000);
  clk.advance(9'999ms);
  CHECK(clk.now_ms() == t0 + 9'999);
  CHECK_FALSE(f.take());
  CHECK(clk.pending() == 1);
  clk.advance(1ms);
  CHECK(f.take() == 7);
  CHECK(clk.pending() == 0);
  CHECK_FALSE(clk.next_due());
}

TEST_CASE("one advance delivers every message due, earliest first and in "
          "arming order within a moment") {
  fixture f;
  manual_clock clk;
  clk.send_after(f.self, 30ms, 3);
  clk.send_after(f.self, 10ms, 1);
  clk.send_after(f.self, 20ms, 2);
  clk.send_after(f.self, 20ms, 22);
  clk.send_after(f.self, 40ms, 4);
  auto t0 = clk.now_ms();
  CHECK(
    clk.due_moments()
    == std::vector<std::int64_t>{t0 + 10, t0 + 20, t0 + 20, t0 + 30, t0 + 40});
  clk.advance(30ms);
  std::vector<int> got;
  while (auto x = f.take())
    got.push_back(*x);
  CHECK(got == std::vector<int>{1, 2, 22, 3});
  CHECK(clk.pending() == 1);
  CHECK(clk.next_due() == clk.now_ms() + 10);
}

TEST_CASE("a message armed for a moment already passed is delivered at once") {
  fixture f;
  manual_clock clk;
  clk.send_at(caf::actor_cast<caf::strong_actor_ptr>(f.self), clk.now_ms() - 5,
              caf::make_message(9));
  clk.send_after(f.self, 0ms, 10);
  CHECK(clk.pending() == 0);
  CHECK(f.take() == 9);
  CHECK(f.take() == 10);
}

TEST_CASE("advance_to_next moves the manual clock to the earliest due moment") {
  fixture f;
  manual_clock clk{1'000};
  clk.send_after(f.self, 900ms, 2);
  clk.send_after(f.self, 500ms, 1);
  CHECK(clk.advance_to_next() == 1'500);
  CHECK(clk.now_ms() == 1'500);
  CHECK(f.take() == 1);
  CHECK_FALSE(f.take());
  CHECK(clk.advance_to_next() == 1'900);
  CHECK(f.take() == 2);
  CHECK_FALSE(clk.advance_to_next());
  CHECK(clk.now_ms() == 1'900);
}

TEST_CASE("a message to an actor that quit before its moment is dropped") {
  fixture f;
  manual_clock clk;
  auto gone = f.sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    self->quit();
    return {[](int) {}};
  });
  f.self->monitor(gone);
  f.self->receive([](const caf::down_msg&) {});
  clk.send_after(gone, 1s, 1);
  CHECK(clk.pending() == 1);
  clk.advance(1s); // no crash, nothing left
  CHECK(clk.pending() == 0);
}

TEST_CASE("the real clock reads the wall clock and delivers after the delay") {
  fixture f;
  auto clk = real_clock();
  auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  CHECK(std::abs(clk->now_ms() - wall) < 1'000);
  auto started = std::chrono::steady_clock::now();
  clk->send_after(f.self, 30ms, 5);
  std::optional<int> got;
  f.self->receive(
    [&](int x) {
      got = x;
    },
    caf::after(10s) >> [] {});
  CHECK(got == 5);
  CHECK(std::chrono::steady_clock::now() - started >= 30ms);
}
