#include "tests/supervision/test_support.hpp"

#include <algorithm>
#include <cstdlib>

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>

namespace cerebelum::supervision::test {

void event_log::add(std::string event) {
  std::lock_guard<std::mutex> guard{mtx_};
  events_.push_back(std::move(event));
}

std::vector<std::string> event_log::events() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return events_;
}

size_t event_log::count(const std::string& event) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return static_cast<size_t>(std::count(events_.begin(), events_.end(), event));
}

test_config::test_config() {
  add_supervision_types(*this);
}

namespace {

caf::behavior test_worker(caf::event_based_actor* self, std::string id,
                          std::shared_ptr<event_log> log, caf::actor observer,
                          worker_options opts) {
  // Trap exits to log "stop:<id>" before the link tells the supervisor; a
  // kill bypasses this handler (and the log), as it should.
  self->set_exit_handler([self, log, id, opts](caf::exit_msg& x) {
    if (!x.reason || x.reason == caf::exit_reason::normal) return;
    if (opts.hang_on_shutdown) {
      log->add("ignored:" + id);
      return;
    }
    log->add("stop:" + id);
    self->quit(std::move(x.reason));
  });
  if (opts.notify)
    self->send(observer, started_atom::value, id,
               caf::actor_cast<caf::actor>(self));
  return {
    [self, log, id](die_atom, caf::error& reason) {
      log->add("exit:" + id);
      self->quit(std::move(reason));
    },
  };
}

} // namespace

fixture::fixture()
  : sys(cfg),
    self(sys),
    log(std::make_shared<event_log>()),
    now_ms(std::make_shared<std::atomic<int64_t>>(0)) {
  if (std::getenv("CEREBELUM_TEST_LOG") == nullptr)
    spdlog::set_level(spdlog::level::off);
}

fixture::~fixture() {
  // Stop what a test left running: the actor system waits for all actors.
  for (auto& sup : supervisors) {
    self->monitor(sup);
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    auto timed_out = false;
    while (downs.count(sup.address()) == 0 && !timed_out)
      self->receive(
        [&](caf::down_msg& x) {
          downs.emplace(x.source, std::move(x.reason));
        },
        caf::after(guard_timeout) >>
          [&] {
            timed_out = true;
          });
  }
}

child_spec fixture::worker(std::string id, restart_type restart,
                           worker_options opts) {
  child_spec spec;
  spec.id = id;
  spec.restart = restart;
  caf::actor observer = self;
  spec.start = [id, log = log, observer,
                opts](caf::actor_system& sys,
                      const caf::message&) -> caf::expected<caf::actor> {
    log->add("start:" + id);
    return sys.spawn(test_worker, id, log, observer, opts);
  };
  return spec;
}

child_spec fixture::dynamic_worker(restart_type restart, worker_options opts) {
  child_spec spec;
  spec.id = "worker";
  spec.restart = restart;
  caf::actor observer = self;
  spec.start = [log = log, observer,
                opts](caf::actor_system& sys,
                      const caf::message& args) -> caf::expected<caf::actor> {
    if (!args.match_elements<std::string>())
      return caf::make_error(caf::sec::invalid_argument, "expected an id");
    auto id = args.get_as<std::string>(0);
    log->add("start:" + id);
    return sys.spawn(test_worker, id, log, observer, opts);
  };
  return spec;
}

child_spec fixture::failing(std::string id) {
  child_spec spec;
  spec.id = id;
  spec.start = [id,
                log = log](caf::actor_system&,
                           const caf::message&) -> caf::expected<caf::actor> {
    log->add("fail:" + id);
    return caf::make_error(caf::sec::runtime_error, "refused to start");
  };
  return spec;
}

caf::actor fixture::start(supervisor_config cfg) {
  auto sup = start_supervisor(sys, std::move(cfg));
  REQUIRE(sup);
  supervisors.push_back(*sup);
  return *sup;
}

caf::actor fixture::await_start(const std::string& id, size_t nth) {
  auto timed_out = false;
  while (starts[id].size() < nth && !timed_out) {
    self->receive(
      [&](started_atom, std::string& who, caf::actor& handle) {
        starts[who].push_back(std::move(handle));
      },
      caf::after(guard_timeout) >>
        [&] {
          timed_out = true;
        });
  }
  REQUIRE_FALSE(timed_out);
  return starts[id][nth - 1];
}

caf::error fixture::await_down(const caf::actor& who) {
  auto timed_out = false;
  while (downs.count(who.address()) == 0 && !timed_out) {
    self->receive(
      [&](caf::down_msg& x) {
        downs.emplace(x.source, std::move(x.reason));
      },
      caf::after(guard_timeout) >>
        [&] {
          timed_out = true;
        });
  }
  REQUIRE_FALSE(timed_out);
  return downs[who.address()];
}

caf::error fixture::wait_exit(const caf::actor& who) {
  self->monitor(who);
  return await_down(who);
}

std::vector<child_info> fixture::children(const caf::actor& sup) {
  auto xs = which_children(self, sup, caf::duration{guard_timeout});
  REQUIRE(xs);
  return std::move(*xs);
}

child_info fixture::child(const caf::actor& sup, const std::string& id) {
  for (auto& x : children(sup))
    if (x.id == id) return x;
  FAIL("no child " << id);
  return {};
}

bool fixture::has_child(const caf::actor& sup, const std::string& id) {
  auto xs = children(sup);
  return std::any_of(xs.begin(), xs.end(), [&](const child_info& x) {
    return x.id == id;
  });
}

void fixture::wait_until(
  const caf::actor& sup,
  const std::function<bool(const std::vector<child_info>&)>& pred) {
  auto deadline = std::chrono::steady_clock::now() + guard_timeout;
  while (!pred(children(sup)))
    REQUIRE(std::chrono::steady_clock::now() < deadline);
}

void fixture::wait_replaced(const caf::actor& sup, const std::string& id,
                            const caf::actor& old) {
  wait_until(sup, [&](const std::vector<child_info>& xs) {
    return std::none_of(xs.begin(), xs.end(), [&](const child_info& x) {
      return x.id == id && x.child == old;
    });
  });
}

void fixture::advance(std::chrono::milliseconds dt) {
  *now_ms += dt.count();
}

clock_function fixture::clock() {
  return [now = now_ms] {
    return std::chrono::steady_clock::time_point{
      std::chrono::milliseconds{now->load()}};
  };
}

supervisor_flags flags(restart_strategy strategy, int intensity,
                       clock_function clock) {
  supervisor_flags result;
  result.strategy = strategy;
  result.intensity = intensity;
  result.period = std::chrono::seconds{5};
  result.clock = std::move(clock);
  return result;
}

} // namespace cerebelum::supervision::test
