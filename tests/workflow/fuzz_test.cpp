// Fuzz-style robustness: thousands of seeded mutations of YAML documents and
// of expressions. Loading, validating, evaluating and deciding must return a
// clean result or a clean error; nothing may throw or crash.
#include <fstream>
#include <functional>
#include <sstream>

#include <catch2/catch.hpp>

#include "src/workflow/decider.hpp"
#include "src/workflow/loader.hpp"

using namespace cerebelum::workflow;

namespace {

struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  std::size_t below(std::size_t n) {
    return n == 0 ? 0 : static_cast<std::size_t>(next() % n);
  }
};

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
  auto d = decide(*r, history, {"fz", 0});
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
