// Fuzz-style robustness: thousands of seeded mutations of YAML documents and
// of expressions, and random worker inputs folded into histories. Loading,
// validating, evaluating and deciding must return a clean result or a clean
// error; nothing may throw or crash.
#include <fstream>
#include <functional>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/support/rng.hpp"
#include "workflow/decider.hpp"
#include "workflow/loader.hpp"

using namespace cerebelum::workflow;

namespace {

using cerebelum::test::rng;

const std::string noise[] = {":",
                             "-",
                             " ",
                             "\n",
                             "\t",
                             "{",
                             "}",
                             "[",
                             "]",
                             "\"",
                             "'",
                             "#",
                             "&a",
                             "*a",
                             "!!str",
                             "${",
                             "}",
                             "(",
                             ")",
                             ".",
                             "steps.",
                             "input.",
                             "+",
                             "*",
                             "/ 0",
                             "== ",
                             "not ",
                             "and",
                             "\xff",
                             "\xc3",
                             "\x00",
                             "1e999",
                             "-1",
                             "99999999999",
                             "goto: ",
                             "retry: ",
                             "name: x",
                             "call: f",
                             "parallel:",
                             "branch:",
                             "map: {over: input}",
                             "|",
                             ">",
                             "%",
                             "?",
                             ",",
                             "end",
                             "sleep: 0s",
                             "\\",
                             "\xe2\x82\xac"};

std::string mutate(std::string text, rng& r) {
  auto edits = 1 + r.below(4);
  for (std::size_t i = 0; i < edits; ++i) {
    auto pos = r.below(text.size() + 1);
    switch (r.below(6)) {
      case 0: // delete a range
        text.erase(pos, r.below(12));
        break;
      case 1: // insert noise
        text.insert(pos, noise[r.below(std::size(noise))]);
        break;
      case 2: { // duplicate a slice
        auto len = r.below(40);
        text.insert(pos, text.substr(pos, len));
        break;
      }
      case 3: // flip a byte
        if (pos < text.size())
          text[pos] = static_cast<char>(text[pos] ^ (1 << r.below(8)));
        break;
      case 4: { // change indentation of a line
        auto nl = text.rfind('\n', pos);
        text.insert(nl == std::string::npos ? 0 : nl + 1,
                    std::string(r.below(3), ' '));
        break;
      }
      default: // truncate
        text.resize(pos);
        break;
    }
  }
  return text;
}

std::string read(const std::string& name) {
  std::ifstream in{std::string{CEREBELUM_EXAMPLES_DIR} + "/" + name};
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// Loads a mutant; a definition that loads must also decide cleanly.
void exercise(const std::string& text) {
  auto r = load_yaml(text, "fuzz.yaml");
  if (!r) {
    CHECK(r.error().file == "fuzz.yaml");
    CHECK_FALSE(r.error().message.empty());
    CHECK_FALSE(r.error().to_string().empty());
    return;
  }
  std::vector<cerebelum::events::Event> history{make_started_event(
    *r, json{{"order_id", "o"}, {"amount", 5}, {"items", {1, 2}}}, 0)};
  auto d = decide(*r, history, {"fz", 0, {}});
  CHECK(d.ok());
}

} // namespace

TEST_CASE("thousands of mutated YAML documents load or fail cleanly") {
  const std::string seeds[] = {read("order.yaml"), read("payment_retry.yaml"),
                               read("batch_poll.yaml")};
  std::size_t loaded = 0;
  rng r{0x5eed};
  for (int i = 0; i < 6000; ++i) {
    auto text = mutate(seeds[static_cast<std::size_t>(i) % 3], r);
    INFO("mutant " << i);
    exercise(text);
    if (load_yaml(text).ok()) ++loaded;
  }
  // Some mutants stay valid (comments, spacing); most must be rejected.
  CHECK(loaded > 0);
  CHECK(loaded < 6000);
}

TEST_CASE("thousands of mutated expressions parse and evaluate cleanly") {
  const std::string corpus[] = {
    "input.amount > 1000 or steps.fraud.score > 0.7",
    "len(input.items) * 2 + 1",
    "lower(input.name) + '-' + upper(\"x\")",
    "contains(input.tags, 'vip') and not (input.amount in [1, 2, 3])",
    "{a: [1, 2.5, null, true], 'b': input['items'][0]}",
    "now() - steps.start.at >= 3600000",
    "error.kind == 'timeout' && error.retryable || item.x % 3 != index",
  };
  const json input = {{"amount", 2000},
                      {"items", {1, "two", {{"x", 3}}}},
                      {"tags", {"vip"}},
                      {"name", "Ann"}};
  const json steps = {{"fraud", {{"score", 0.9}}}, {"start", {{"at", 5}}}};
  const json error = {{"kind", "timeout"}, {"retryable", true}};
  const json item = {{"x", 4}};
  const json index = 1;
  eval_scope sc{&input, &steps, &error, &item, &index, 7};
  rng r{0xe4b2};
  std::size_t parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    auto text = mutate(corpus[static_cast<std::size_t>(i) % 7], r);
    auto e = expression::parse(text);
    if (!e) {
      CHECK(e.error().column >= 1);
      CHECK(e.error().column <= static_cast<int>(text.size()) + 1);
      continue;
    }
    ++parsed;
    auto v = e->eval(sc);
    if (v)
      CHECK_NOTHROW(v->dump(-1, ' ', false, json::error_handler_t::replace));
    auto t = text_template::parse("k-${" + text + "}");
    if (t) (void)t->render(sc);
  }
  CHECK(parsed > 0);
}

TEST_CASE("random JSON documents load or fail cleanly") {
  rng r{0x7a7a};
  const char* keys[] = {"name",     "steps",  "call",    "set",
                        "sleep",    "branch", "goto",    "if",
                        "input",    "retry",  "diverge", "kind",
                        "parallel", "map",    "over",    "approval"};
  for (int i = 0; i < 3000; ++i) {
    std::function<json(int)> gen = [&](int depth) -> json {
      switch (depth > 4 ? r.below(4) : r.below(7)) {
        case 0: return static_cast<std::int64_t>(r.below(10)) - 3;
        case 1: return std::string{keys[r.below(std::size(keys))]};
        case 2: return r.below(2) == 0;
        case 3: return nullptr;
        case 4: {
          json a = json::array();
          for (std::size_t k = r.below(4); k > 0; --k)
            a.push_back(gen(depth + 1));
          return a;
        }
        default: {
          json o = json::object();
          for (std::size_t k = r.below(5); k > 0; --k)
            o[keys[r.below(std::size(keys))]] = gen(depth + 1);
          return o;
        }
      }
    };
    auto doc = gen(0);
    if (i % 2 == 0) doc = {{"name", "j"}, {"steps", json::array({gen(1)})}};
    auto res = load_json(doc, "doc.json");
    if (!res) CHECK_FALSE(res.error().message.empty());
  }
}

TEST_CASE("random worker inputs (suspensions, resumes, results with odd "
          "fields) fold and decide cleanly") {
  namespace ev = cerebelum::events;
  auto def = load_yaml(R"y(
name: f
steps:
  - name: a
    task: t.a
    queue: q
    retry: { max_attempts: 2, initial_interval: 1s }
  - name: m
    map: { over: "[1, 2]" }
    task: t.m
    queue: q
  - name: g
    parallel:
      - { name: x, task: t.x, queue: q }
      - { name: y, approval: { timeout: 1m } }
)y");
  REQUIRE(def.ok());
  const char* steps[] = {"a", "m", "x", "y", "nope", ""};
  const char* keys[] = {"k", "", "k2", "\xff"};
  const char* data[] = {"", "null", "{\"a\":1}", "not json", "[1,"};
  rng r{0xd0d0};
  std::size_t ok = 0, refused = 0, armed = 0, resumed = 0;
  for (int run = 0; run < 600; ++run) {
    std::int64_t now = 1000;
    std::vector<ev::Event> history{make_started_event(*def, json{}, now)};
    for (int round = 0; round < 40; ++round) {
      auto d = decide(*def, history, {"fz", now, {}});
      if (!d) {
        // Only a bad resume may make the history unusable here.
        CHECK_THAT(d.error().message, Catch::Contains("execution_resumed"));
        ++refused;
        break;
      }
      ++ok;
      for (const auto& x : d->events) {
        if (x.has_timer_started()
            && x.timer_started().purpose() == "step_resume")
          ++armed;
        if (x.has_approval_requested() && x.approval_requested().step() != "y")
          ++armed;
      }
      if (history.back().has_execution_resumed()) ++resumed;
      history.insert(history.end(), d->events.begin(), d->events.end());
      execution_state s{*def, "fz"};
      for (const auto& e : history)
        (void)s.apply(e);
      auto out = s.outstanding();
      ev::Event e;
      const auto* a = out.empty() ? nullptr : &out[r.below(out.size())];
      auto step = a && r.below(4) != 0 ? a->step
                                       : std::string{steps[r.below(6)]};
      auto index = a && r.below(4) != 0
                     ? a->map_index
                     : static_cast<std::int32_t>(r.below(5)) - 2;
      auto token = a && r.below(5) != 0 ? a->token : std::string{"bogus"};
      switch (r.below(7)) {
        case 0:
        case 1: {
          auto* x = e.mutable_step_suspended();
          x->set_step(step);
          x->set_map_index(index);
          x->set_attempt_token(token);
          x->set_approval_data_json(data[r.below(5)]);
          x->set_suspended_at_ms(r.below(2) == 0 ? 0 : now);
          if (r.below(3) != 0) { // well-formed
            x->set_wait_key(keys[r.below(2) * 2]);
            if (r.below(2) == 0)
              x->set_sleep_ms(1 + static_cast<std::int64_t>(r.below(1000)));
            else
              x->set_approval(true);
            break;
          }
          x->set_wait_key(keys[r.below(4)]);
          x->set_sleep_ms(static_cast<std::int64_t>(r.below(4)) - 1);
          x->set_approval(r.below(2) == 0);
          x->set_approval_timeout_ms(static_cast<std::int64_t>(r.below(3)) - 1);
          break;
        }
        case 2: {
          if (!s.terminal() && r.below(5) != 0) {
            e.mutable_step_progress()->set_step(step);
            break;
          }
          auto* x = e.mutable_execution_resumed();
          auto dl = s.dead_letter();
          x->set_step(dl && r.below(3) != 0 ? dl->step : step);
          x->set_map_index(dl && r.below(3) != 0 ? dl->map_index : index);
          break;
        }
        case 3: {
          auto* x = e.mutable_step_failed();
          x->set_step(step);
          x->set_map_index(index);
          x->set_attempt_token(token);
          x->mutable_error()->set_kind(r.below(2) == 0 ? "lease_expired"
                                                       : "fatal");
          x->mutable_error()->set_retryable(r.below(2) == 0);
          break;
        }
        case 4: {
          auto* x = e.mutable_step_completed();
          x->set_step(step);
          x->set_map_index(index);
          x->set_attempt_token(token);
          x->set_result_json(data[r.below(5)]);
          break;
        }
        case 5: {
          auto timers = s.timers();
          if (timers.empty()) {
            e.mutable_approval_granted()->set_step(step);
            e.mutable_approval_granted()->set_data_json(data[r.below(5)]);
          } else {
            const auto& t = timers[r.below(timers.size())];
            now = std::max(now, t.fire_at_ms);
            e.mutable_timer_fired()->set_timer_id(t.id);
          }
          break;
        }
        default: {
          if (r.below(2) == 0)
            e.mutable_approval_rejected()->set_step(step);
          else
            e.mutable_step_progress()->set_step(step);
          break;
        }
      }
      e.set_seq(static_cast<std::int64_t>(history.size()));
      e.set_recorded_at_ms(now);
      history.push_back(std::move(e));
      now += 100;
    }
  }
  INFO(ok << " decisions, " << refused << " refused, " << armed
          << " suspensions armed, " << resumed << " resumes");
  CHECK(ok > 3000);
  CHECK(refused > 0);
  CHECK(armed > 100);
  CHECK(resumed > 5);
}
