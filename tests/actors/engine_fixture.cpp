#include "tests/actors/engine_fixture.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <random>

#include "actors/errc.hpp"
#include "actors/messages.hpp"
#include "actors/task_api.hpp"
#include "tests/support/eventually.hpp"

namespace cerebelum::actors::test {

std::atomic<int> flaky_failures{0};

namespace {

const char* timeline_yaml = R"(name: timeline
version: "1"
steps:
  - name: a
    call: t.inc
    input: { n: "input.i" }
  - name: b
    call: t.double
    input: { n: "steps.a.n" }
  - name: c
    call: t.add3
    input: { n: "steps.b.n" }
output:
  n: "steps.c.n"
)";

const char* fanout_yaml = R"(name: fanout
version: "1"
steps:
  - name: checks
    parallel:
      - name: left
        call: t.inc
        input: { n: "input.i" }
      - name: right
        call: t.double
        input: { n: "input.i" }
    branch:
      - if: "steps.right.n > 10"
        goto: big
  - name: small
    set: { size: "'small'" }
    branch:
      - goto: end
  - name: big
    set: { size: "'big'" }
output:
  left: "steps.left.n"
  right: "steps.right.n"
)";

const char* sleeper_yaml = R"(name: sleeper
version: "1"
steps:
  - name: nap
    sleep: { expr: "input.i" }
  - name: after
    call: t.inc
    input: { n: "input.i" }
output:
  n: "steps.after.n"
)";

const char* approval_yaml = R"(name: gated
version: "1"
steps:
  - name: ask
    approval:
      data: { i: "input.i" }
    diverge:
      - kind: approval_rejected
        goto: refused
  - name: go
    call: t.inc
    input: { n: "input.i" }
    branch:
      - goto: end
  - name: refused
    set: { refused: "true" }
output:
  i: "input.i"
)";

const char* napper_yaml = R"(name: napper
version: "1"
steps:
  - name: first
    call: t.inc
    input: { n: "input.i" }
  - name: nap
    sleep: { expr: "input.i" }
output:
  n: "steps.first.n"
)";

const char* slow_retry_yaml = R"(name: slow_retry
version: "1"
steps:
  - name: try
    call: t.flaky
    input: { n: "input.i" }
    retry: { max_attempts: 5, initial_interval: 5s, backoff_coefficient: 2 }
output:
  n: "steps.try.n"
)";

void write(const std::filesystem::path& file, const char* text) {
  std::ofstream out{file};
  out << text;
}

int n_of(const json& in) {
  return in.at("n").get<int>();
}

} // namespace

void write_workflows(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write(dir / "timeline.yaml", timeline_yaml);
  write(dir / "fanout.yaml", fanout_yaml);
  write(dir / "sleeper.yaml", sleeper_yaml);
  write(dir / "gated.yaml", approval_yaml);
  write(dir / "napper.yaml", napper_yaml);
  write(dir / "slow_retry.yaml", slow_retry_yaml);
}

std::shared_ptr<function_registry> test_functions() {
  auto fns = std::make_shared<function_registry>();
  fns->add("t.inc", [](const json& in) {
    return json{{"n", n_of(in) + 1}};
  });
  fns->add("t.double", [](const json& in) {
    return json{{"n", n_of(in) * 2}};
  });
  fns->add("t.add3", [](const json& in) {
    return json{{"n", n_of(in) + 3}};
  });
  fns->add("t.flaky", [](const json& in) {
    if (flaky_failures.fetch_sub(1) > 0)
      throw step_failure("flaky", "not yet", true);
    return json{{"n", n_of(in)}};
  });
  return fns;
}

std::string pg_conninfo() {
  auto* env = std::getenv("CEREBELUM_TEST_PG");
  return env ? std::string{env} : std::string{};
}

struct engine_fixture::impl {
  impl() : sys(prepared(cfg)) {
    // nop
  }
  static caf::actor_system_config& prepared(caf::actor_system_config& c) {
    add_node_message_types(c);
    return c;
  }
  caf::actor_system_config cfg;
  caf::actor_system sys;
};

engine_fixture::engine_fixture(std::string store)
  : impl_(std::make_unique<impl>()) {
  std::random_device rd;
  dir_ = std::filesystem::temp_directory_path()
         / ("cerebelum-actors-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(dir_);
  write_workflows(dir_ / "workflows");
  cfg_.data_dir = dir_;
  cfg_.store = std::move(store);
  cfg_.workflows_dir = dir_ / "workflows";
  cfg_.functions = test_functions();
}

engine_fixture::~engine_fixture() {
  stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

actors::manual_clock& engine_fixture::start_on_manual_clock() {
  auto& clk = manual_time();
  start();
  return clk;
}

actors::manual_clock& engine_fixture::manual_time() {
  if (!clock_) {
    clock_ = std::make_shared<actors::manual_clock>();
    cfg_.clock = clock_;
  }
  return *clock_;
}

caf::actor_system& engine_fixture::system() {
  return impl_->sys;
}

void engine_fixture::start() {
  auto n = actors::node::start(impl_->sys, cfg_);
  if (!n) FAIL("node did not start: " << impl_->sys.render(n.error()));
  node_.emplace(std::move(*n));
}

void engine_fixture::stop() {
  if (!node_) return;
  REQUIRE(node_->stop(std::chrono::seconds{20}));
  node_.reset();
}

bool engine_fixture::is_live(const std::string& id) {
  caf::scoped_actor self{impl_->sys};
  bool live = false;
  self
    ->request(node_->registry(), std::chrono::seconds{5}, lookup_atom::value,
              id)
    .receive(
      [&](const caf::actor& a) {
        live = static_cast<bool>(a);
      },
      [&](const caf::error&) {});
  return live;
}

using cerebelum::test::eventually;

bool engine_fixture::wait_passivated(const std::string& id) {
  return eventually([&] {
    return !is_live(id);
  });
}

bool engine_fixture::wait_status(const std::string& id,
                                 eventstore::execution_status st) {
  return eventually([&] {
    auto v = api().describe(id);
    return v && v->status == st;
  });
}

std::uint64_t engine_fixture::waiters(const std::string& id) {
  caf::scoped_actor self{impl_->sys};
  std::uint64_t n = 0;
  self
    ->request(node_->registry(), std::chrono::seconds{5}, watch_atom::value, id)
    .receive(
      [&](std::uint64_t x) {
        n = x;
      },
      [&](const caf::error&) {});
  return n;
}

void engine_fixture::register_worker(const std::string& worker,
                                     const std::string& queue) {
  std::promise<task_result<registration_info>> reg;
  node_->tasks()->register_worker({worker, {queue}, {}, 1, {}},
                                  [&](task_result<registration_info> r) {
                                    reg.set_value(std::move(r));
                                  });
  auto got = reg.get_future().get();
  REQUIRE(got);
}

std::pair<std::uint64_t, std::uint64_t> engine_fixture::scheduler_stats() {
  caf::scoped_actor self{impl_->sys};
  std::pair<std::uint64_t, std::uint64_t> out;
  self->request(node_->scheduler(), std::chrono::seconds{5}, stats_atom::value)
    .receive(
      [&](std::uint64_t in_memory, std::uint64_t fired) {
        out = {in_memory, fired};
      },
      [&](const caf::error& err) {
        FAIL("scheduler stats: " << impl_->sys.render(err));
      });
  return out;
}

execution_view engine_fixture::start(const std::string& workflow, int i,
                                     const std::string& id) {
  start_request req;
  req.workflow = workflow;
  req.input = json{{"i", i}};
  req.execution_id = id;
  req.started_by = "test";
  auto res = api().start(req);
  if (!res) FAIL("start failed: " << api_error_message(res.error()));
  return res->execution;
}

int count_of(engine_api& api, const std::string& id,
             events::Event::PayloadCase which) {
  auto hist = api.history(id, 0);
  REQUIRE(hist);
  int n = 0;
  for (auto& ev : *hist)
    n += ev.payload_case() == which ? 1 : 0;
  return n;
}

} // namespace cerebelum::actors::test
