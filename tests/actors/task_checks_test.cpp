// What the task router checks in workers' requests (actors/task_checks.hpp).
#include <catch2/catch.hpp>

#include <string>

#include "actors/task_checks.hpp"

using namespace cerebelum::actors;

namespace {

attempt_info attempt() {
  return {"charge", 2, "t-9", 3};
}

constexpr const char* one_step = R"(name: pay
version: "1"
steps:
  - name: charge
    task: pay.charge
    queue: payments
)";

worker_registration registration() {
  worker_registration reg;
  reg.worker_id = "w1";
  reg.queues = {"payments"};
  reg.workflows = {{"pay.yaml", "yaml", one_step}};
  return reg;
}

} // namespace

TEST_CASE("a success is recorded as step_completed of its attempt") {
  auto r = outcome_event(attempt(), "w1", task_success{R"({"ok":1})"}, 1234);
  REQUIRE(r);
  REQUIRE(r.value->has_step_completed());
  auto& c = r.value->step_completed();
  CHECK(c.step() == "charge");
  CHECK(c.attempt() == 2);
  CHECK(c.attempt_token() == "t-9");
  CHECK(c.map_index() == 3);
  CHECK(c.worker_id() == "w1");
  CHECK(c.completed_at_ms() == 1234);
  CHECK(c.result_json() == R"({"ok":1})");
}

TEST_CASE("a success needs a result that is JSON") {
  auto empty = outcome_event(attempt(), "w1", task_success{""}, 0);
  REQUIRE(empty.error);
  CHECK(empty.error->code == task_errc::invalid_json);
  auto broken = outcome_event(attempt(), "w1", task_success{"{"}, 0);
  REQUIRE(broken.error);
  CHECK(broken.error->code == task_errc::invalid_json);
}

TEST_CASE("a result, error or approval data over the payload limit is "
          "recorded as the step's failure, not retryable") {
  auto big = outcome_event(attempt(), "w1", task_success{"\"12345678\""}, 0, 8);
  REQUIRE(big);
  REQUIRE(big.value->has_step_failed());
  auto& e = big.value->step_failed().error();
  CHECK(e.kind() == "payload_too_large");
  CHECK_FALSE(e.retryable());
  CHECK(e.message()
        == "result_json of step 'charge' is 10 bytes, more than the limit of "
           "8 bytes (--max-payload-bytes)");
  CHECK(big.value->step_failed().attempt_token() == "t-9");
  auto fits = outcome_event(attempt(), "w1", task_success{"\"123456\""}, 0, 8);
  REQUIRE(fits);
  CHECK(fits.value->has_step_completed());
  auto error = outcome_event(attempt(), "w1",
                             task_failure{"k", "12345", "[1,2]", true}, 0, 8);
  REQUIRE(error);
  CHECK(error.value->step_failed().error().kind() == "payload_too_large");
  auto data = outcome_event(attempt(), "w1",
                            task_suspend{"k", 0, true, "[1,2,3,4]", 0}, 0, 8);
  REQUIRE(data);
  CHECK(data.value->step_failed().error().kind() == "payload_too_large");
}

TEST_CASE("a failure without a kind is recorded with kind error") {
  task_failure f;
  f.message = "boom";
  f.retryable = false;
  auto r = outcome_event(attempt(), "w1", f, 7);
  REQUIRE(r);
  REQUIRE(r.value->has_step_failed());
  CHECK(r.value->step_failed().error().kind() == "error");
  CHECK(r.value->step_failed().error().message() == "boom");
  CHECK_FALSE(r.value->step_failed().error().retryable());
}

TEST_CASE("a failure's kind is a name and its details are JSON") {
  task_failure spaced{"card declined", "no", "", true};
  auto r = outcome_event(attempt(), "w1", spaced, 0);
  REQUIRE(r.error);
  CHECK(r.error->code == task_errc::invalid_argument);
  task_failure details{"declined", "no", "{nope", true};
  auto d = outcome_event(attempt(), "w1", details, 0);
  REQUIRE(d.error);
  CHECK(d.error->code == task_errc::invalid_json);
}

TEST_CASE("a suspend needs a wait key and exactly one of sleep or approval") {
  auto check = [](task_suspend s) {
    auto r = outcome_event(attempt(), "w1", s, 0);
    REQUIRE(r.error);
    CHECK(r.error->code == task_errc::invalid_argument);
  };
  check({"", 100, false, "", 0});
  check({"k", 0, false, "", 0});
  check({"k", 100, true, "", 0});
  check({"k", 0, true, "", -1});
  auto ok = outcome_event(attempt(), "w1", task_suspend{"k", 100, false, "", 0},
                          5);
  REQUIRE(ok);
  REQUIRE(ok.value->has_step_suspended());
  CHECK(ok.value->step_suspended().sleep_ms() == 100);
  CHECK(ok.value->step_suspended().wait_key() == "k");
}

TEST_CASE("a registration loads the definitions it brings") {
  auto r = check_registration(registration());
  REQUIRE(r);
  REQUIRE(r.value->size() == 1);
  CHECK(r.value->front().name == "pay");
}

TEST_CASE("a registration without worker id or queue is refused") {
  auto no_id = registration();
  no_id.worker_id.clear();
  CHECK(check_registration(no_id).error->code == task_errc::invalid_argument);
  auto no_queue = registration();
  no_queue.queues.clear();
  CHECK(check_registration(no_queue).error->code
        == task_errc::invalid_argument);
  auto empty_queue = registration();
  empty_queue.queues.push_back("");
  CHECK(check_registration(empty_queue).error->code
        == task_errc::invalid_argument);
}

TEST_CASE("a registration with a bad or doubled definition registers none") {
  auto format = registration();
  format.workflows[0].format = "toml";
  auto f = check_registration(format);
  REQUIRE(f.error);
  CHECK(f.error->code == task_errc::invalid_workflow);
  CHECK(f.error->message.find("unknown format 'toml'") != std::string::npos);
  auto twice = registration();
  twice.workflows.push_back({"again.yaml", "yaml", one_step});
  auto t = check_registration(twice);
  REQUIRE(t.error);
  CHECK(t.error->message.find("defined twice") != std::string::npos);
  auto broken = registration();
  broken.workflows[0].text = "name: [";
  CHECK(check_registration(broken).error->code == task_errc::invalid_workflow);
}
