// workflow_bench: decider throughput and replay cost.
//
//   decisions/s   a 10-step workflow driven the way the execution actor
//                 drives it (one state, apply each result, decide), and the
//                 pure form (fold the whole history on every decision)
//   replay µs     folding a 10,000-event history into state, and deciding
//                 on it; the floor is parsing the same events from bytes
//
// Prints one `name value unit` line per figure, or one JSON object with
// --json.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "workflow/builder.hpp"
#include "workflow/decider.hpp"

using namespace cerebelum::workflow;
namespace ev = cerebelum::events;
using clock_type = std::chrono::steady_clock;

namespace {

definition ten_steps() {
  workflow_builder b{"bench10"};
  for (int i = 0; i < 10; ++i) {
    auto name = "s" + std::to_string(i);
    auto s = step_builder::call(name, "f." + name).input("x", "input.x");
    if (i > 0) s.input("prev", "steps.s" + std::to_string(i - 1) + ".v");
    b.then(std::move(s));
  }
  auto r = b.build();
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

definition loop() {
  auto r = workflow_builder{"loop"}
             .max_iterations(1'000'000)
             .then(step_builder::call("poll", "f.poll"))
             .branch("steps.poll.again", "poll")
             .build();
  if (!r) std::exit(1);
  return std::move(*r);
}

ev::Event completion(const run_step_command& run, std::int64_t seq,
                     const char* result) {
  ev::Event e;
  e.set_seq(seq);
  auto* c = e.mutable_step_completed();
  c->set_step(run.step);
  c->set_attempt(run.attempt);
  c->set_attempt_token(run.token);
  c->set_map_index(run.map_index);
  c->set_result_json(result);
  return e;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Runs executions of the 10-step workflow; returns decisions per second.
double decisions_per_sec(const definition& def, bool incremental,
                         double budget_s) {
  std::size_t decisions = 0;
  auto t0 = clock_type::now();
  std::int64_t now = 0;
  while (seconds_since(t0) < budget_s) {
    std::vector<ev::Event> history{
      make_started_event(def, json{{"x", 1}}, now)};
    execution_state state{def, "bench"};
    (void)state.apply(history[0]);
    for (;;) {
      auto d = incremental ? decide(state, ++now)
                           : decide(def, history, {"bench", ++now, {}});
      ++decisions;
      if (!d) std::exit(2);
      history.insert(history.end(), d->events.begin(), d->events.end());
      const run_step_command* run = nullptr;
      for (const auto& c : d->commands)
        if ((run = std::get_if<run_step_command>(&c))) break;
      if (!run) break;
      auto e = completion(*run, static_cast<std::int64_t>(history.size()),
                          "{\"v\":1}");
      if (incremental) (void)state.apply(e);
      history.push_back(std::move(e));
    }
  }
  return static_cast<double>(decisions) / seconds_since(t0);
}

/// A history of at least `n` events from the loop workflow.
std::vector<ev::Event> long_history(const definition& def, std::size_t n) {
  std::vector<ev::Event> history{make_started_event(def, json::object(), 0)};
  execution_state state{def, "bench"};
  (void)state.apply(history[0]);
  std::int64_t now = 0;
  while (history.size() < n) {
    auto d = decide(state, ++now);
    if (!d) std::exit(3);
    history.insert(history.end(), d->events.begin(), d->events.end());
    if (d->commands.empty()) break;
    const auto* run = std::get_if<run_step_command>(&d->commands.front());
    if (!run) break;
    auto e = completion(*run, static_cast<std::int64_t>(history.size()),
                        history.size() + 3 < n ? "{\"again\":true}"
                                               : "{\"again\":false}");
    (void)state.apply(e);
    history.push_back(std::move(e));
  }
  return history;
}

template <class F>
double median_us(int runs, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto t0 = clock_type::now();
    f();
    t.push_back(seconds_since(t0) * 1e6);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  bool as_json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  auto def10 = ten_steps();
  auto incr = decisions_per_sec(def10, true, 2.0);
  auto pure = decisions_per_sec(def10, false, 2.0);

  auto def_loop = loop();
  auto history = long_history(def_loop, 10'000);
  std::vector<std::string> wire;
  for (const auto& e : history)
    wire.push_back(e.SerializeAsString());
  auto parse_us = median_us(21, [&] {
    ev::Event e;
    for (const auto& w : wire)
      (void)e.ParseFromString(w);
  });
  auto replay_us = median_us(21, [&] {
    execution_state s{def_loop, "bench"};
    for (const auto& e : history)
      (void)s.apply(e);
  });
  auto replay_decide_us = median_us(21, [&] {
    auto d = decide(def_loop, history, {"bench", 1, {}});
    if (!d) std::exit(4);
  });
  if (as_json) {
    std::printf("{\"decisions_per_sec_10_step_incremental\": %.0f, "
                "\"decisions_per_sec_10_step_pure\": %.0f, "
                "\"history_events\": %zu, \"replay_us\": %.0f, "
                "\"replay_and_decide_us\": %.0f, \"parse_floor_us\": %.0f, "
                "\"replay_to_parse_ratio\": %.2f}\n",
                incr, pure, history.size(), replay_us, replay_decide_us,
                parse_us, replay_us / parse_us);
    return 0;
  }
  std::printf("decisions_per_sec_10_step_incremental %.0f decisions/s\n", incr);
  std::printf("decisions_per_sec_10_step_pure %.0f decisions/s\n", pure);
  std::printf("replay_%zu_events %.0f us\n", history.size(), replay_us);
  std::printf("replay_and_decide_%zu_events %.0f us\n", history.size(),
              replay_decide_us);
  std::printf("parse_floor_%zu_events %.0f us\n", history.size(), parse_us);
  std::printf("replay_to_parse_ratio %.2f\n", replay_us / parse_us);
  return 0;
}
