#include "bench/actors/engine_bench_setup.hpp"

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

#include "actors/engine_context.hpp"
#include "actors/history.hpp"
#include "eventstore/group_writer.hpp"
#include "eventstore/sqlite_store.hpp"
#include "workflow/loader.hpp"

namespace cerebelum::bench {

namespace {

/// The 3-step workflow `name` calling `<prefix>.inc`, `.double`, `.add3`.
std::string three_steps(const std::string& name, const std::string& prefix) {
  return "name: " + name + R"(
version: "1"
steps:
  - name: a
    call: )"
         + prefix + R"(.inc
    input: { n: "input.i" }
  - name: b
    call: )"
         + prefix + R"(.double
    input: { n: "steps.a.n" }
  - name: c
    call: )"
         + prefix + R"(.add3
    input: { n: "steps.b.n" }
output:
  n: "steps.c.n"
)";
}

const char* nap = R"(name: nap
version: "1"
steps:
  - name: zz
    sleep: { expr: "input.ms" }
output:
  slept: "input.ms"
)";

} // namespace

void write_bench_workflows(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream{dir / "three_steps.yaml"} << three_steps("three_steps", "b");
  std::ofstream{dir / "three_steps_pool.yaml"}
    << three_steps("three_steps_pool", "bp");
  std::ofstream{dir / "nap.yaml"} << nap;
}

std::shared_ptr<actors::function_registry> bench_functions() {
  using json = nlohmann::json;
  auto fns = std::make_shared<actors::function_registry>();
  for (auto [prefix, where] : {std::pair{"b", actors::run_on::actor},
                               std::pair{"bp", actors::run_on::pool}}) {
    auto name = [p = std::string{prefix}](const char* fn) {
      return p + "." + fn;
    };
    fns->add(
      name("inc"),
      [](const json& in) {
        return json{{"n", in["n"].get<int>() + 1}};
      },
      where);
    fns->add(
      name("double"),
      [](const json& in) {
        return json{{"n", in["n"].get<int>() * 2}};
      },
      where);
    fns->add(
      name("add3"),
      [](const json& in) {
        return json{{"n", in["n"].get<int>() + 3}};
      },
      where);
  }
  return fns;
}

std::size_t create_sleepers(const std::filesystem::path& data_dir,
                            const std::filesystem::path& workflows_dir,
                            std::size_t count, std::int64_t sleep_ms) {
  eventstore::sqlite_options opts;
  opts.data_dir = data_dir.string();
  auto store = eventstore::open_sqlite_store(opts);
  if (!store) throw std::runtime_error(eventstore::to_string(store.err()));
  auto def = workflow::load_file(workflows_dir / "nap.yaml");
  if (!def) throw std::runtime_error(def.error().to_string());
  eventstore::group_writer writer{*store};
  std::atomic<std::size_t> ok{0};
  auto now = actors::real_clock()->now_ms();
  for (std::size_t i = 0; i < count; ++i) {
    auto id = "sleeper-" + std::to_string(i);
    workflow::execution_state state{*def, id};
    std::vector<events::Event> evs{workflow::make_started_event(
      *def, workflow::json{{"ms", sleep_ms}}, now, "bench")};
    if (!state.apply(evs[0])) throw std::runtime_error("bad started event");
    auto before = actors::capture_rows(state);
    auto dec = workflow::decide(state, now);
    if (!dec) throw std::runtime_error(dec.error().to_string());
    for (auto& ev : dec->events)
      evs.push_back(ev);
    auto req = actors::make_append(state, 0, evs, before, dec->commands, now);
    auto st = writer.submit(std::move(req), [&ok](eventstore::append_result r) {
      if (r) ++ok;
    });
    if (st != eventstore::submit_status::accepted)
      throw std::runtime_error("writer refused a sleeper");
  }
  writer.close();
  return ok.load();
}

std::size_t rss_bytes() {
  std::ifstream in{"/proc/self/statm"};
  std::size_t pages = 0;
  std::size_t resident = 0;
  in >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

} // namespace cerebelum::bench
