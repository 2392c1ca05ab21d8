// The task router's state machine (actors/task_queue.hpp) in virtual time:
// leases, polls, completions, and the one due moment it asks to be woken at.
#include <catch2/catch.hpp>

#include <string>

#include "actors/attempt_token.hpp"
#include "actors/task_queue.hpp"

using namespace cerebelum::actors;
using namespace std::chrono_literals;

namespace {

cerebelum::eventstore::task_row row(const std::string& token,
                                    const std::string& execution = "ex-1",
                                    std::int64_t hb_ms = 0) {
  cerebelum::eventstore::task_row r;
  r.task_id = token;
  r.execution_id = execution;
  r.queue = "q";
  r.step = "work";
  r.attempt = 1;
  r.payload = R"({"target":"t.run","workflow":"wf","input":{"n":1})"
              + (hb_ms > 0
                   ? ",\"heartbeat_timeout_ms\":" + std::to_string(hb_ms)
                   : std::string{})
              + "}";
  return r;
}

/// The attempt token of the task poll `poll_id` got among `effects`
/// (empty: none).
std::string token_of(const std::vector<queue_effect>& effects,
                     std::uint64_t poll_id) {
  for (auto& e : effects)
    if (auto* p = std::get_if<poll_answered>(&e);
        p != nullptr && p->poll_id == poll_id && p->result.value
        && *p->result.value)
      return (*p->result.value)->attempt_token;
  return {};
}

/// Worker "w" of queue "q" leases `r` at moment 0 (its effects taken);
/// returns the attempt token it got.
std::string lease_at_zero(task_queue& q, cerebelum::eventstore::task_row r) {
  q.add_worker("w", {"q"}, 1, 0);
  q.upsert(std::move(r));
  q.poll(1, "w", {}, 30'000ms, 0);
  auto token = token_of(q.take_effects(), 1);
  REQUIRE_FALSE(token.empty());
  return token;
}

router_options options() {
  router_options o;
  o.default_lease = 10'000ms;
  o.default_poll_wait = 30'000ms;
  o.commit_timeout = 5'000ms;
  return o;
}

/// The polls answered among `effects`, by poll id.
std::map<std::uint64_t, poll_reply>
polls_of(const std::vector<queue_effect>& effects) {
  std::map<std::uint64_t, poll_reply> out;
  for (auto& e : effects)
    if (auto* p = std::get_if<poll_answered>(&e))
      out.emplace(p->poll_id, p->result);
  return out;
}

std::vector<event_to_send> events_of(const std::vector<queue_effect>& effects) {
  std::vector<event_to_send> out;
  for (auto& e : effects)
    if (auto* x = std::get_if<event_to_send>(&e)) out.push_back(*x);
  return out;
}

} // namespace

TEST_CASE("an idle queue asks to be woken for nothing") {
  task_queue q{options()};
  q.add_worker("w", {"q"}, 1, 0);
  CHECK(q.next_due() == 0);
}

TEST_CASE("a waiting poll is due at its deadline and ends empty then") {
  task_queue q{options()};
  q.add_worker("w", {"q"}, 1, 1'000);
  q.poll(1, "w", {}, 2'000ms, 1'000);
  CHECK(q.take_effects().empty());
  CHECK(q.next_due() == 3'000);
  q.expire(2'999);
  CHECK(q.take_effects().empty());
  q.expire(3'000);
  auto polls = polls_of(q.take_effects());
  REQUIRE(polls.count(1) == 1);
  CHECK(polls[1].value.has_value());
  CHECK_FALSE(*polls[1].value);
  CHECK(q.next_due() == 0);
}

TEST_CASE("a new task goes to the waiting poll at once with its lease") {
  task_queue q{options()};
  q.add_worker("w", {"q"}, 1, 0);
  q.poll(1, "w", {}, 30'000ms, 0);
  q.upsert(row("t1"));
  q.dispatch(100);
  auto polls = polls_of(q.take_effects());
  REQUIRE(polls.count(1) == 1);
  auto& task = *polls[1].value;
  REQUIRE(task);
  auto ref = parse_external_token(task->attempt_token);
  REQUIRE(ref);
  CHECK(ref->execution_id == "ex-1");
  CHECK(ref->token == "t1");
  CHECK(ref->secret.size() == lease_secret_chars);
  CHECK(task->task_type == "t.run");
  CHECK(task->lease_expires_at_ms == 10'100);
  CHECK(q.next_due() == 10'100);
}

TEST_CASE("a lease expires at its due moment, not before, and fails the "
          "attempt") {
  task_queue q{options()};
  lease_at_zero(q, row("t1"));
  q.expire(9'999);
  CHECK(events_of(q.take_effects()).empty());
  q.expire(10'000);
  auto sent = events_of(q.take_effects());
  REQUIRE(sent.size() == 1);
  REQUIRE(sent[0].event->has_step_failed());
  CHECK(sent[0].event->step_failed().error().kind() == "lease_expired");
  CHECK(sent[0].event->step_failed().lost());
  CHECK(sent[0].token == "t1");
  // The failure is sent again if no commit answers it in time.
  CHECK(q.next_due() == 15'000);
}

TEST_CASE("a heartbeat moves the lease's due moment") {
  task_queue q{options()};
  auto token = lease_at_zero(q, row("t1", "ex-1", 2'000));
  CHECK(q.next_due() == 2'000);
  auto hb = q.heartbeat("w", token, "", 1'500);
  REQUIRE(hb);
  CHECK(hb.value->lease_expires_at_ms == 3'500);
  CHECK(q.next_due() == 3'500);
  q.expire(2'000);
  CHECK(events_of(q.take_effects()).empty());
}

TEST_CASE("a completion waits for the commit and is answered when the row "
          "goes") {
  task_queue q{options()};
  auto token = lease_at_zero(q, row("t1"));
  auto d = q.complete("w", token, task_success{R"({"ok":true})"}, 50);
  REQUIRE(d.kind == complete_decision::pending);
  auto sent = events_of(q.take_effects());
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].event->has_step_completed());
  CHECK(q.next_due() == 5'050); // the commit timeout
  q.remove("t1", 0);
  auto effects = q.take_effects();
  REQUIRE(effects.size() == 1);
  auto& done = std::get<completion_answered>(effects[0]);
  CHECK(done.token == "t1");
  REQUIRE(done.result);
  CHECK(done.result.value->recorded);
  CHECK(q.next_due() == 0);
  // A retried call of the same outcome is told it was recorded.
  auto again = q.complete("w", token, task_success{"{}"}, 60);
  REQUIRE(again.kind == complete_decision::answered);
  CHECK_FALSE(again.answer.value->recorded);
}

TEST_CASE("a completion that wants the next task is answered with a ready "
          "task leased to its worker, ahead of waiting polls") {
  task_queue q{options()};
  q.add_worker("w", {"q"}, 1, 0);
  q.add_worker("other", {"q"}, 1, 0);
  q.upsert(row("t1"));
  q.poll(1, "w", {}, 30'000ms, 0);
  auto token = token_of(q.take_effects(), 1);
  auto d = q.complete("w", token, task_success{"{}"}, 50, true);
  REQUIRE(d.kind == complete_decision::pending);
  q.take_effects();
  // Another worker waits; the commit brings the next step's row and deletes
  // the completed one (one tasks message, upserts first).
  q.poll(2, "other", {}, 30'000ms, 60);
  auto next = row("t2");
  next.available_at_ms = 100;
  q.upsert(next);
  q.remove("t1", 100);
  q.dispatch(100);
  auto effects = q.take_effects();
  REQUIRE(effects.size() == 1);
  auto& done = std::get<completion_answered>(effects[0]);
  REQUIRE(done.result);
  CHECK(done.result.value->recorded);
  REQUIRE(done.result.value->next);
  auto next_token = done.result.value->next->attempt_token;
  CHECK(done.result.value->next->task_id == "t2");
  CHECK(done.result.value->next->lease_expires_at_ms == 10'100);
  // Leased to w: w's limit (1) is used, and the waiting poll got nothing.
  CHECK(polls_of(effects).empty());
  CHECK(q.complete("w", next_token, task_success{"{}"}, 110).kind
        == complete_decision::pending);
}

TEST_CASE("a completion that wants the next task is answered without one when "
          "none is ready or the worker has no room, and one that does not ask "
          "gets none") {
  task_queue q{options()};
  SECTION("nothing ready") {
    auto token = lease_at_zero(q, row("t1"));
    q.complete("w", token, task_success{"{}"}, 10, true);
    q.take_effects();
    q.remove("t1", 20);
    auto effects = q.take_effects();
    REQUIRE(effects.size() == 1);
    auto& done = std::get<completion_answered>(effects[0]);
    REQUIRE(done.result);
    CHECK_FALSE(done.result.value->next);
  }
  SECTION("no room: the worker holds its limit in other leases") {
    q.add_worker("w", {"q"}, 2, 0);
    q.upsert(row("t1"));
    q.upsert(row("t2", "ex-2"));
    q.poll(1, "w", {}, 30'000ms, 0);
    q.poll(2, "w", {}, 30'000ms, 0);
    auto leased = q.take_effects();
    auto token = token_of(leased, 1);
    if (parse_external_token(token)->token != "t1") token = token_of(leased, 2);
    q.complete("w", token, task_success{"{}"}, 10, true);
    // The worker registers again with a limit of 1 while it holds t1 and t2:
    // once t1 is gone it holds t2, its whole limit.
    q.add_worker("w", {"q"}, 1, 15);
    q.take_effects();
    q.upsert(row("t3", "ex-1"));
    q.remove("t1", 20);
    auto effects = q.take_effects();
    REQUIRE(effects.size() == 1);
    auto& done = std::get<completion_answered>(effects[0]);
    REQUIRE(done.result);
    CHECK(done.result.value->recorded);
    CHECK_FALSE(done.result.value->next);
  }
  SECTION("not asked") {
    auto token = lease_at_zero(q, row("t1"));
    q.complete("w", token, task_success{"{}"}, 10);
    q.take_effects();
    q.upsert(row("t2"));
    q.remove("t1", 20);
    auto effects = q.take_effects();
    REQUIRE(effects.size() == 1);
    CHECK_FALSE(std::get<completion_answered>(effects[0]).result.value->next);
  }
}

TEST_CASE("a task's timeout is due a whole timeout after its lease began, "
          "and not before a worker holds it") {
  task_queue q{options()};
  auto r = row("t1");
  r.payload = R"({"target":"t.run","workflow":"wf","input":{},)"
              R"("start_to_close_timeout_ms":1000})";
  q.add_worker("w", {"q"}, 1, 0);
  q.upsert(r);
  // Waiting for a worker: look again a whole timeout later.
  CHECK(q.timeout_due("t1", 500) == 1'500);
  CHECK(q.timeout_due("t1", 4'000) == 5'000);
  q.poll(1, "w", {}, 30'000ms, 4'200);
  auto token = token_of(q.take_effects(), 1);
  CHECK(q.timeout_due("t1", 4'300) == 5'200);
  CHECK(q.timeout_due("t1", 5'200) == 0); // up
  // Handed back unseen: waiting again.
  q.release("w", token, 4'400);
  CHECK(q.timeout_due("t1", 4'400) == 5'400);
  // Unknown tokens and tasks without a timeout: now.
  CHECK(q.timeout_due("nope", 4'400) == 0);
  q.upsert(row("t2"));
  CHECK(q.timeout_due("t2", 4'400) == 0);
}

TEST_CASE("an outcome not committed in time is answered unavailable and the "
          "lease is kept") {
  task_queue q{options()};
  auto token = lease_at_zero(q, row("t1"));
  q.complete("w", token, task_success{"{}"}, 0);
  q.take_effects();
  q.expire(5'000);
  auto effects = q.take_effects();
  REQUIRE(effects.size() == 1);
  auto& done = std::get<completion_answered>(effects[0]);
  REQUIRE(done.result.error);
  CHECK(done.result.error->code == task_errc::unavailable);
  CHECK(q.next_due() == 15'000);
}

TEST_CASE("a task held for its sticky worker goes to another worker when the "
          "preference runs out") {
  auto opts = options();
  opts.queues["q"].sticky_ms = 1'000;
  task_queue q{opts};
  q.add_worker("a", {"q"}, 1, 0);
  q.add_worker("b", {"q"}, 1, 0);
  // Worker a runs the execution's first task.
  q.upsert(row("t1"));
  q.poll(1, "a", {}, 30'000ms, 0);
  auto token = token_of(q.take_effects(), 1);
  q.complete("a", token, task_success{"{}"}, 10);
  q.remove("t1", 0);
  q.take_effects();
  // Its next task prefers a; only b polls.
  q.poll(2, "b", {}, 30'000ms, 20);
  auto r = row("t2");
  r.available_at_ms = 20;
  q.upsert(r);
  q.dispatch(20);
  CHECK(polls_of(q.take_effects()).empty());
  CHECK(q.next_due() == 1'020);
  q.expire(1'020);
  auto polls = polls_of(q.take_effects());
  REQUIRE(polls.count(2) == 1);
  REQUIRE(*polls[2].value);
  CHECK((*polls[2].value)->task_id == "t2");
}

TEST_CASE("a cancelled poll ends at once and is no longer due") {
  task_queue q{options()};
  q.add_worker("w", {"q"}, 1, 0);
  q.poll(7, "w", {}, 30'000ms, 0);
  q.cancel_poll(7);
  auto polls = polls_of(q.take_effects());
  REQUIRE(polls.count(7) == 1);
  CHECK_FALSE(*polls[7].value);
  CHECK(q.next_due() == 0);
}

TEST_CASE("a lost worker's leases fail as worker_lost and its polls end") {
  task_queue q{options()};
  q.add_worker("w", {"q"}, 2, 0);
  q.upsert(row("t1"));
  q.poll(1, "w", {}, 30'000ms, 0);
  q.poll(2, "w", {}, 30'000ms, 0);
  q.take_effects();
  CHECK(q.drop_worker("w", "gone", 5) == 1);
  auto effects = q.take_effects();
  auto sent = events_of(effects);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].event->step_failed().error().kind() == "worker_lost");
  CHECK(sent[0].event->step_failed().worker_id() == "w");
  CHECK(polls_of(effects).count(2) == 1);
  CHECK_FALSE(q.has_worker("w"));
}

TEST_CASE("an attempt token without the lease's secret is refused and leaves "
          "the lease to its holder") {
  task_queue q{options()};
  auto token = lease_at_zero(q, row("t1"));
  auto ref = parse_external_token(token);
  REQUIRE(ref);
  // What anyone who reads the history can build: the execution id and the
  // internal token, with no secret, a guessed one, or one digit off.
  auto flipped = ref->secret;
  flipped[0] = flipped[0] == '0' ? '1' : '0';
  std::vector<std::string> forged{
    "4:ex-1:t1",
    external_token("ex-1", std::string(lease_secret_chars, '0'), "t1"),
    external_token("ex-1", flipped, "t1")};
  for (auto& f : forged) {
    auto d = q.complete("w", f, task_success{R"({"by":"thief"})"}, 10);
    REQUIRE(d.kind == complete_decision::answered);
    REQUIRE(d.answer.error);
    CHECK(d.answer.error->code == task_errc::stale_token);
    // The message names the attempt without any secret.
    CHECK(d.answer.error->message.find(ref->secret) == std::string::npos);
    auto hb = q.heartbeat("w", f, "", 20);
    REQUIRE(hb.error);
    CHECK(hb.error->code == task_errc::stale_token);
    q.release("w", f, 30);
  }
  CHECK(events_of(q.take_effects()).empty());
  // Nothing moved the lease: it ends when the holder's lease does.
  CHECK(q.next_due() == 10'000);
  auto d = q.complete("w", token, task_success{R"({"by":"w"})"}, 40);
  REQUIRE(d.kind == complete_decision::pending);
  auto sent = events_of(q.take_effects());
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].event->step_completed().result_json() == R"({"by":"w"})");
  // The recorded event carries the internal token, never the secret.
  CHECK(sent[0].event->step_completed().attempt_token() == "t1");
  q.remove("t1", 50);
  auto effects = q.take_effects();
  REQUIRE(effects.size() == 1);
  CHECK(std::get<completion_answered>(effects[0]).result.value->recorded);
}

TEST_CASE("a retried completion is told it was recorded only with the lease's "
          "secret") {
  task_queue q{options()};
  auto token = lease_at_zero(q, row("t1"));
  q.complete("w", token, task_success{"{}"}, 10);
  q.remove("t1", 20);
  q.take_effects();
  auto again = q.complete("w", token, task_success{"{}"}, 30);
  REQUIRE(again.kind == complete_decision::answered);
  REQUIRE(again.answer.value);
  CHECK_FALSE(again.answer.value->recorded);
  auto forged = q.complete(
    "w", external_token("ex-1", std::string(lease_secret_chars, 'a'), "t1"),
    task_success{"{}"}, 30);
  REQUIRE(forged.kind == complete_decision::answered);
  REQUIRE(forged.answer.error);
  CHECK(forged.answer.error->code == task_errc::stale_token);
}

TEST_CASE("a task leased again gets a new secret and the earlier lease's "
          "token no longer acts on it") {
  task_queue q{options()};
  auto first = lease_at_zero(q, row("t1"));
  q.release("w", first, 10);
  q.poll(2, "w", {}, 30'000ms, 20);
  auto second = token_of(q.take_effects(), 2);
  REQUIRE_FALSE(second.empty());
  CHECK(second != first);
  CHECK(parse_external_token(second)->token == "t1");
  auto hb = q.heartbeat("w", first, "", 30);
  REQUIRE(hb.error);
  CHECK(hb.error->code == task_errc::stale_token);
  auto old = q.complete("w", first, task_success{"{}"}, 30);
  REQUIRE(old.kind == complete_decision::answered);
  CHECK(old.answer.error);
  CHECK(q.complete("w", second, task_success{"{}"}, 40).kind
        == complete_decision::pending);
}
