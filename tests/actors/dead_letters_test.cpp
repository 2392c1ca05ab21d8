// Dead letters through engine_api: a task failure that fails its execution
// is listed, and a retry reopens it once (the execution's actor records it).

#include <catch2/catch.hpp>

#include <fstream>
#include <future>

#include "actors/errc.hpp"
#include "actors/task_api.hpp"
#include "tests/actors/engine_fixture.hpp"

using namespace cerebelum::actors;
using namespace cerebelum::actors::test;
using status = cerebelum::eventstore::execution_status;
namespace events = cerebelum::events;

namespace {

/// Leases the next task of queue "dq" for worker "w".
leased_task lease(const task_api& tasks) {
  std::promise<task_result<std::optional<leased_task>>> polled;
  tasks.poll("w", {"dq"}, std::chrono::seconds{10},
             [&](task_result<std::optional<leased_task>> r) {
               polled.set_value(std::move(r));
             });
  auto got = polled.get_future().get();
  REQUIRE(got);
  REQUIRE(got.value->has_value());
  return **got.value;
}

/// Fails `task` for good: the execution fails, the task is a dead letter.
void fail_for_good(const task_api& tasks, const leased_task& task) {
  std::promise<task_result<complete_info>> done;
  tasks.complete("w", task.attempt_token,
                 task_failure{"declined", "card declined", "", false},
                 [&](task_result<complete_info> r) {
                   done.set_value(std::move(r));
                 });
  REQUIRE(done.get_future().get());
}

} // namespace

TEST_CASE("engine_api lists dead letters and a retry reopens the execution "
          "once") {
  engine_fixture f;
  {
    std::ofstream out{f.data_dir() / "workflows" / "charged.yaml"};
    out << "name: charged\nversion: \"1\"\nsteps:\n  - name: charge\n"
           "    task: t.charge\n    queue: dq\n    input: { n: \"input.i\" }\n";
  }
  f.start();
  auto tasks = f.node().tasks();
  f.register_worker("w", "dq");
  auto v = f.start("charged", 1, "dl-exec");
  fail_for_good(*tasks, lease(*tasks));
  auto failed = f.api().wait(v.execution_id, wait_time);
  REQUIRE(failed);
  REQUIRE(failed->status == status::failed);
  auto listed = f.api().dead_letters("dq", 0, "");
  REQUIRE(listed);
  REQUIRE(listed->items.size() == 1);
  auto& dl = listed->items[0];
  CHECK(dl.execution_id == v.execution_id);
  CHECK(dl.error_kind == "declined");
  auto retried = f.api().retry_dead_letter(dl.id, "ops");
  REQUIRE(retried);
  CHECK(retried->execution_id == v.execution_id);
  CHECK(f.api().dead_letters("dq", 0, "")->items.empty());
  auto again = f.api().retry_dead_letter(dl.id, "ops");
  REQUIRE_FALSE(again);
  CHECK(api_error_code(again.error()) == errc::not_found);
  // The step runs again as a new attempt; this time it succeeds.
  auto task = lease(*tasks);
  std::promise<task_result<complete_info>> done;
  tasks->complete("w", task.attempt_token, task_success{R"({"ok":true})"},
                  [&](task_result<complete_info> r) {
                    done.set_value(std::move(r));
                  });
  REQUIRE(done.get_future().get());
  auto end = f.api().wait(v.execution_id, wait_time);
  REQUIRE(end);
  CHECK(end->status == status::completed);
  CHECK(count_of(f.api(), v.execution_id, events::Event::kExecutionResumed)
        == 1);
}
