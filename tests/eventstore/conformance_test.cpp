// The event store conformance suite, run against every backend.

#include <catch2/catch.hpp>

#include <set>

#include "eventstore/codec.hpp"
#include "tests/eventstore/backends.hpp"
#include "tests/eventstore/helpers.hpp"

using namespace cerebelum::eventstore;
namespace events = cerebelum::events;
using namespace cerebelum::eventstore::testing;

#define BACKENDS sqlite_tag, pg_tag

TEMPLATE_TEST_CASE("an append is read back in order from its expected seq",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto ack = require_ok(store->append(make_append("e1", 0, 3)));
  CHECK(ack.first_seq == 0);
  CHECK(ack.next_seq == 3);
  auto ack2 = require_ok(store->append(make_append("e1", 3, 2)));
  CHECK(ack2.first_seq == 3);
  CHECK(ack2.next_seq == 5);
  auto events = read_all(*store, "e1");
  REQUIRE(events.size() == 5);
  for (std::size_t i = 0; i < events.size(); ++i) {
    CHECK(events[i].seq == static_cast<std::int64_t>(i));
    CHECK(events[i].payload == "e1#" + std::to_string(i));
    CHECK(events[i].recorded_at_ms == 1000 + static_cast<std::int64_t>(i));
  }
  CHECK(read_all(*store, "e1", 3).size() == 2);
  auto row = require_ok(store->get_execution("e1"));
  REQUIRE(row.has_value());
  CHECK(row->next_seq == 5);
  CHECK(row->workflow == "wf");
  CHECK(row->workflow_version == 7);
}

TEMPLATE_TEST_CASE("an unknown execution has an empty history and no index row",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  CHECK(read_all(*store, "nobody").empty());
  CHECK_FALSE(require_ok(store->get_execution("nobody")).has_value());
}

TEMPLATE_TEST_CASE("an append without events creates the execution's index row",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto req = make_append("empty", 0, 0);
  req.index.status = execution_status::sleeping;
  auto ack = require_ok(store->append(req));
  CHECK(ack.next_seq == 0);
  CHECK(read_all(*store, "empty").empty());
  auto row = require_ok(store->get_execution("empty"));
  REQUIRE(row.has_value());
  CHECK(row->status == execution_status::sleeping);
  CHECK(row->next_seq == 0);
}

TEMPLATE_TEST_CASE(
  "a wrong expected next seq is a conflict that writes nothing",
  "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  require_ok(store->append(make_append("c", 0, 2)));
  for (std::int64_t wrong : {0, 1, 3, 10}) {
    auto req = make_append("c", wrong, 1);
    req.timer_upserts.push_back({"", "t", 5, "sleep", 1});
    auto res = store->append(req);
    REQUIRE_FALSE(res.ok());
    CHECK(res.err().code == errc::conflict);
    CHECK_FALSE(res.err().possibly_committed);
    CHECK_THAT(res.err().message, Catch::Contains("'c'"));
  }
  CHECK(read_all(*store, "c").size() == 2);
  CHECK(require_ok(store->timers_of("c")).empty());
  CHECK(require_ok(store->get_execution("c"))->next_seq == 2);
}

TEMPLATE_TEST_CASE("events, index row, timers and tasks of an append commit "
                   "together",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto req = make_append("a", 0, 2);
  req.index.status = execution_status::sleeping;
  req.index.phase = "nap";
  req.index.wake_at_ms = 5000;
  req.timer_upserts.push_back({"", "sleep-1", 5000, "sleep", 3});
  req.task_upserts.push_back({"task-1", "", "q1", "fetch", 2, "tok-2", "idem",
                              std::string("\0\1bin", 5), 77, "", std::nullopt});
  require_ok(store->append(req));
  auto row = *require_ok(store->get_execution("a"));
  CHECK(row.status == execution_status::sleeping);
  CHECK(row.phase == "nap");
  CHECK(row.wake_at_ms == std::optional<std::int64_t>{5000});
  CHECK(row.next_seq == 2);
  auto timers = require_ok(store->timers_of("a"));
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].execution_id == "a");
  CHECK(timers[0].fire_at_ms == 5000);
  CHECK(timers[0].generation == 3);
  auto tasks = require_ok(store->tasks_of("a"));
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].execution_id == "a");
  CHECK(tasks[0].queue == "q1");
  CHECK(tasks[0].attempt == 2);
  CHECK(tasks[0].attempt_token == "tok-2");
  CHECK(tasks[0].payload == std::string("\0\1bin", 5));
  CHECK_FALSE(tasks[0].lease_expires_at_ms.has_value());
  // A conflicting append with row changes leaves every table untouched.
  auto bad = make_append("a", 1, 1);
  bad.index.status = execution_status::completed;
  bad.timer_deletes.push_back("sleep-1");
  bad.task_deletes.push_back("task-1");
  CHECK(store->append(bad).err().code == errc::conflict);
  CHECK(require_ok(store->get_execution("a"))->status
        == execution_status::sleeping);
  CHECK(require_ok(store->timers_of("a")).size() == 1);
  CHECK(require_ok(store->tasks_of("a")).size() == 1);
}

TEMPLATE_TEST_CASE(
  "timer and task upserts replace rows and deletes remove them",
  "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto first = make_append("t", 0, 1);
  first.timer_upserts = {{"", "x", 10, "sleep", 1}, {"", "y", 20, "sleep", 1}};
  first.task_upserts.push_back(
    {"k1", "", "q", "s", 1, "tok1", "i1", "p1", 0, "", std::nullopt});
  require_ok(store->append(first));
  auto second = make_append("t", 1, 1);
  second.timer_upserts = {{"", "x", 30, "retry_backoff", 2}};
  second.timer_deletes = {"y"};
  second.task_upserts.push_back(
    {"k1", "", "q", "s", 2, "tok2", "i1", "p2", 50, "w1", 99});
  require_ok(store->append(second));
  auto timers = require_ok(store->timers_of("t"));
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].timer_id == "x");
  CHECK(timers[0].fire_at_ms == 30);
  CHECK(timers[0].purpose == "retry_backoff");
  auto tasks = require_ok(store->tasks_of("t"));
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].attempt == 2);
  CHECK(tasks[0].attempt_token == "tok2");
  CHECK(tasks[0].lease_owner == "w1");
  CHECK(tasks[0].lease_expires_at_ms == std::optional<std::int64_t>{99});
  auto third = make_append("t", 2, 0);
  third.task_deletes = {"k1"};
  require_ok(store->append(third));
  CHECK(require_ok(store->tasks_of("t")).empty());
}

TEMPLATE_TEST_CASE("due timers come earliest first up to the limit",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  for (int i = 0; i < 5; ++i) {
    auto req = make_append("d" + std::to_string(i), 0, 1);
    req.timer_upserts.push_back({"", "w", 100 - i * 10, "sleep", 0});
    require_ok(store->append(req));
  }
  auto due = require_ok(store->due_timers(80, 10));
  REQUIRE(due.size() == 3); // fire_at 60, 70, 80
  CHECK(due[0].execution_id == "d4");
  CHECK(due[0].fire_at_ms == 60);
  CHECK(due[2].execution_id == "d2");
  CHECK(require_ok(store->due_timers(1000, 2)).size() == 2);
  CHECK(require_ok(store->due_timers(59, 10)).empty());
}

namespace {

/// Appends 30 executions: created_at 0..29, workflow "w<i%3>", status
/// running / sleeping / completed by i%3.
void seed_listing(event_store& store) {
  for (int i = 0; i < 30; ++i) {
    auto req = make_append("x" + std::to_string(100 + i), 0, 1);
    req.index.workflow = "w" + std::to_string(i % 3);
    req.index.created_at_ms = i;
    req.index.status = static_cast<execution_status>(i % 3 == 2 ? 3 : i % 3);
    require_ok(store.append(req));
  }
}

std::vector<std::string> list_all(event_store& store, const list_filter& f,
                                  std::size_t page_size, bool open_only) {
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    auto page = open_only ? store.open_executions(page_size, token)
                          : store.list_executions(f, page_size, token);
    REQUIRE(page.ok());
    REQUIRE(page->rows.size() <= page_size);
    for (const auto& r : page->rows)
      ids.push_back(r.execution_id);
    token = page->next_page_token;
    REQUIRE(++pages < 100);
  } while (!token.empty());
  return ids;
}

} // namespace

TEMPLATE_TEST_CASE("listing filters the index and pages without gaps or "
                   "duplicates",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  seed_listing(*store);
  auto all = list_all(*store, {}, 7, false);
  REQUIRE(all.size() == 30);
  CHECK(std::set<std::string>(all.begin(), all.end()).size() == 30);
  CHECK(all.front() == "x100");
  CHECK(all.back() == "x129");
  list_filter by_wf;
  by_wf.workflow = "w1";
  CHECK(list_all(*store, by_wf, 4, false).size() == 10);
  list_filter by_status;
  by_status.status = execution_status::sleeping;
  auto sleeping = list_all(*store, by_status, 3, false);
  CHECK(sleeping.size() == 10);
  CHECK(sleeping.front() == "x101");
  list_filter by_time;
  by_time.created_from_ms = 10;
  by_time.created_to_ms = 20;
  by_time.workflow = "w0";
  auto ranged = list_all(*store, by_time, 2, false);
  CHECK(ranged == std::vector<std::string>{"x112", "x115", "x118"});
  auto bad = store->list_executions({}, 5, "garbage");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().code == errc::invalid_argument);
}

TEMPLATE_TEST_CASE("open executions list only non-terminal executions",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  seed_listing(*store);
  auto open = list_all(*store, {}, 6, true);
  CHECK(open.size() == 20);
  for (const auto& id : open) {
    auto row = require_ok(store->get_execution(id));
    CHECK_FALSE(is_terminal(row->status));
  }
}

TEMPLATE_TEST_CASE("a store with a newer schema version is refused with an "
                   "actionable message",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  {
    auto store = require_ok(be->open());
    CHECK(store->schema_version() == current_schema_version);
  }
  require_ok(be->open()); // reopening the same version works
  be->set_schema_version(current_schema_version + 1);
  auto newer = be->open();
  REQUIRE_FALSE(newer.ok());
  CHECK(newer.err().code == errc::schema_too_new);
  CHECK_THAT(newer.err().message, Catch::Contains("upgrade this node"));
  be->set_schema_version(0);
  auto older = be->open();
  REQUIRE_FALSE(older.ok());
  CHECK(older.err().code == errc::schema_incompatible);
}

TEMPLATE_TEST_CASE("unknown optional event types are skipped on replay and "
                   "unknown core types stop it",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  events::Event started;
  started.mutable_execution_started()->set_workflow("wf");
  auto enc = require_ok(encode(started));
  auto req = make_append("u", 0, 0);
  req.events = {enc, {1500, "from the future", 1}, enc};
  require_ok(store->append(req));
  std::vector<std::int64_t> seqs;
  auto n = read_history(*store, "u", 0, [&](const events::Event& ev) {
    CHECK(ev.execution_started().workflow() == "wf");
    seqs.push_back(ev.seq());
    return true;
  });
  CHECK(require_ok(n) == 2);
  CHECK(seqs == std::vector<std::int64_t>{0, 2});
  require_ok(store->append([&] {
    auto r = make_append("u", 3, 0);
    r.events = {{500, "core from the future", 1}};
    return r;
  }()));
  auto bad = read_history(*store, "u", 0, [](const events::Event&) {
    return true;
  });
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().code == errc::unknown_event_type);
  CHECK_THAT(bad.err().message, Catch::Contains("damaged"));
  CHECK_THAT(bad.err().message, !Catch::Contains("newer"));
}

TEMPLATE_TEST_CASE("a payload at the limit is stored and one byte more is "
                   "refused",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  store_limits limits;
  limits.max_payload_bytes = 256 * 1024;
  auto store = require_ok(be->open(limits));
  auto req = make_append("big", 0, 0);
  std::string payload(limits.max_payload_bytes, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(i * 31 % 251);
  req.events = {{4, payload, 1}};
  require_ok(store->append(req));
  auto events = read_all(*store, "big");
  REQUIRE(events.size() == 1);
  CHECK(events[0].payload == payload);
  auto too_big = make_append("big", 1, 0);
  too_big.events = {{4, payload + "!", 1}};
  auto res = store->append(too_big);
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::payload_too_large);
  CHECK_THAT(res.err().message, Catch::Contains("max_payload_bytes"));
  CHECK(be->count_events("big") == 1);
}

TEMPLATE_TEST_CASE("malformed appends get errors naming the problem",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto no_id = store->append(make_append("", 0, 1));
  REQUIRE_FALSE(no_id.ok());
  CHECK(no_id.err().code == errc::invalid_argument);
  CHECK_THAT(no_id.err().message, Catch::Contains("empty execution_id"));
  auto negative = store->append(make_append("n", -1, 1));
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.err().code == errc::invalid_argument);
  CHECK_THAT(negative.err().message, Catch::Contains("negative"));
  auto no_timer_id = make_append("n", 0, 1);
  no_timer_id.timer_upserts.push_back({"", "", 1, "sleep", 0});
  auto res = store->append(no_timer_id);
  REQUIRE_FALSE(res.ok());
  CHECK_THAT(res.err().message, Catch::Contains("timer_id"));
  auto neg_read = store->read("n", -5, [](const stored_event&) {
    return true;
  });
  REQUIRE_FALSE(neg_read.ok());
  CHECK(neg_read.err().code == errc::invalid_argument);
  CHECK(be->count_events("n") == 0);
}

TEMPLATE_TEST_CASE("a history of 50,000 events is streamed back completely "
                   "and in order",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  constexpr int total = 50'000;
  constexpr int chunk = 5'000;
  for (int from = 0; from < total; from += chunk)
    require_ok(store->append(make_append("huge", from, chunk)));
  std::int64_t expected = 0;
  auto n = store->read("huge", 0, [&](const stored_event& ev) {
    if (ev.seq != expected || ev.payload != "huge#" + std::to_string(expected))
      return false;
    ++expected;
    return true;
  });
  CHECK(require_ok(n) == total);
  CHECK(expected == total);
  std::size_t stopped = 0;
  auto early = store->read("huge", 49'990, [&](const stored_event&) {
    return ++stopped < 3;
  });
  CHECK(require_ok(early) == 3);
}

TEMPLATE_TEST_CASE("a conflict or bad append inside a group fails only itself",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  require_ok(store->append(make_append("b", 0, 2)));
  std::vector<append_request> group{
    make_append("a", 0, 2),       // ok
    make_append("b", 0, 1),       // conflict: b is at 2
    make_append("c", 0, 1),       // ok
    make_append("", 0, 1),        // invalid
    make_append("a", 2, 1),       // ok: follows the first append
    make_append("a", 2, 1),       // conflict: a is now at 3
    make_append("b", 2, 1, 4, 0), // ok
  };
  auto results = store->append_batch(group);
  REQUIRE(results.size() == group.size());
  CHECK(results[0].ok());
  CHECK(results[1].err().code == errc::conflict);
  CHECK(results[2].ok());
  CHECK(results[3].err().code == errc::invalid_argument);
  CHECK(results[4].ok());
  CHECK(results[4]->next_seq == 3);
  CHECK(results[5].err().code == errc::conflict);
  CHECK(results[6].ok());
  CHECK(read_all(*store, "a").size() == 3);
  CHECK(read_all(*store, "b").size() == 3);
  CHECK(read_all(*store, "c").size() == 1);
  CHECK(require_ok(store->get_execution("a"))->next_seq == 3);
}

TEMPLATE_TEST_CASE("every task row is paged back in task_id order without "
                   "gaps or repeats",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  std::set<std::string> written;
  for (int e = 0; e < 5; ++e) {
    auto req = make_append("x" + std::to_string(e), 0, 1);
    for (int t = 0; t < 5; ++t) {
      auto id = "task-" + std::to_string(t) + "-" + std::to_string(e);
      written.insert(id);
      req.task_upserts.push_back({id, "", "q" + std::to_string(t % 2), "s", 1,
                                  id, "i", "payload", 10, "", std::nullopt});
    }
    require_ok(store->append(req));
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = require_ok(store->all_tasks(7, token));
    ++pages;
    for (auto& row : page.rows) {
      seen.push_back(row.task_id);
      CHECK(row.execution_id == "x" + row.task_id.substr(7));
      CHECK(row.payload == "payload");
    }
    token = page.next_page_token;
  } while (!token.empty());
  CHECK(pages >= 4);
  CHECK(seen == std::vector<std::string>(written.begin(), written.end()));
  CHECK(require_ok(store->all_tasks(100, "task-4-4")).rows.empty());
}

TEMPLATE_TEST_CASE("dead letters commit with their append, list by queue "
                   "and are deleted by a later append",
                   "[conformance]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto a = make_append("d1", 0, 1);
  a.dead_letter_inserts.push_back({0, "tok-a", "", "emails", 3,
                                   std::string("{\"x\":\0}", 7), "{\"e\":1}",
                                   500});
  require_ok(store->append(a));
  auto b = make_append("d2", 0, 1);
  b.dead_letter_inserts.push_back(
    {0, "tok-b", "", "billing", 1, "{}", "{\"e\":2}", 600});
  require_ok(store->append(b));
  // A conflicting append writes no dead letter.
  auto bad = make_append("d2", 0, 1);
  bad.dead_letter_inserts.push_back(
    {0, "tok-c", "", "billing", 1, "{}", "{}", 700});
  CHECK(store->append(bad).err().code == errc::conflict);

  auto all = require_ok(store->list_dead_letters("", 100, ""));
  REQUIRE(all.rows.size() == 2);
  CHECK(all.next_page_token.empty());
  CHECK(all.rows[0].id < all.rows[1].id);
  CHECK(all.rows[0].execution_id == "d1");
  CHECK(all.rows[0].task_id == "tok-a");
  CHECK(all.rows[0].attempt == 3);
  CHECK(all.rows[0].payload == std::string("{\"x\":\0}", 7));
  CHECK(all.rows[0].error == "{\"e\":1}");
  CHECK(all.rows[0].failed_at_ms == 500);
  auto billing = require_ok(store->list_dead_letters("billing", 100, ""));
  REQUIRE(billing.rows.size() == 1);
  CHECK(billing.rows[0].execution_id == "d2");
  auto first = require_ok(store->list_dead_letters("", 1, ""));
  REQUIRE(first.rows.size() == 1);
  REQUIRE_FALSE(first.next_page_token.empty());
  auto second
    = require_ok(store->list_dead_letters("", 1, first.next_page_token));
  REQUIRE(second.rows.size() == 1);
  CHECK(second.rows[0].id == all.rows[1].id);
  CHECK(store->list_dead_letters("", 1, "nope").err().code
        == errc::invalid_argument);

  auto got = require_ok(store->get_dead_letter(all.rows[1].id));
  REQUIRE(got.has_value());
  CHECK(got->queue == "billing");
  CHECK_FALSE(require_ok(store->get_dead_letter(999999)).has_value());

  // Only the owning execution's append deletes it.
  auto other = make_append("d1", 1, 1);
  other.dead_letter_deletes.push_back(all.rows[1].id);
  require_ok(store->append(other));
  CHECK(require_ok(store->get_dead_letter(all.rows[1].id)).has_value());
  auto del = make_append("d2", 1, 1);
  del.dead_letter_deletes.push_back(all.rows[1].id);
  require_ok(store->append(del));
  CHECK_FALSE(require_ok(store->get_dead_letter(all.rows[1].id)).has_value());
  CHECK(require_ok(store->list_dead_letters("", 100, "")).rows.size() == 1);
}

namespace {

definition_row make_definition(const std::string& name, std::uint64_t version,
                               std::int64_t at) {
  return {name, version,
          "{\"name\":\"" + name + "\",\"v\":" + std::to_string(version) + "}",
          "file:" + name + ".yaml", at};
}

} // namespace

TEMPLATE_TEST_CASE("a definition is stored once per name and version and "
                   "read back whole",
                   "[conformance][definitions]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  CHECK_FALSE(require_ok(store->get_definition("wf", 1)).has_value());
  auto first = make_definition("wf", 1, 10);
  CHECK(store->put_definition(first).ok());
  // The same version again changes nothing: a version is its content.
  auto again = first;
  again.source = "worker:w1";
  again.stored_at_ms = 99;
  CHECK(store->put_definition(again).ok());
  auto got = require_ok(store->get_definition("wf", 1));
  REQUIRE(got.has_value());
  CHECK(got->document == first.document);
  CHECK(got->source == "file:wf.yaml");
  CHECK(got->stored_at_ms == 10);
  // Versions are full 64-bit hashes.
  auto big = make_definition("wf", 0xfedcba9876543210ULL, 20);
  CHECK(store->put_definition(big).ok());
  auto got_big = require_ok(store->get_definition("wf", big.version));
  REQUIRE(got_big.has_value());
  CHECK(got_big->version == big.version);
  CHECK_FALSE(require_ok(store->get_definition("other", 1)).has_value());
}

TEMPLATE_TEST_CASE("definitions are listed by name in the order they were "
                   "stored, with or without their documents",
                   "[conformance][definitions]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  CHECK(store->put_definition(make_definition("b", 5, 30)).ok());
  CHECK(store->put_definition(make_definition("a", 9, 10)).ok());
  CHECK(store->put_definition(make_definition("a", 3, 20)).ok());
  auto all = require_ok(store->list_definitions("", false));
  REQUIRE(all.size() == 3);
  CHECK(all[0].name == "a");
  CHECK(all[0].version == 9);
  CHECK(all[1].version == 3);
  CHECK(all[2].name == "b");
  CHECK(all[0].document.empty());
  CHECK(all[0].source == "file:a.yaml");
  auto a = require_ok(store->list_definitions("a", true));
  REQUIRE(a.size() == 2);
  CHECK(a[1].document == make_definition("a", 3, 20).document);
  CHECK(require_ok(store->list_definitions("none", true)).empty());
}

TEMPLATE_TEST_CASE("a definition inserted with an append commits with it and "
                   "an existing one is left as it is",
                   "[conformance][definitions]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto req = make_append("d1", 0, 2);
  req.definition_inserts.push_back(make_definition("wf", 7, 100));
  require_ok(store->append(req));
  REQUIRE(require_ok(store->get_definition("wf", 7)).has_value());
  // A second execution on the same version: insert-if-absent.
  auto req2 = make_append("d2", 0, 1);
  auto changed = make_definition("wf", 7, 200);
  changed.source = "worker:x";
  req2.definition_inserts.push_back(changed);
  require_ok(store->append(req2));
  auto got = require_ok(store->get_definition("wf", 7));
  CHECK(got->source == "file:wf.yaml");
  CHECK(got->stored_at_ms == 100);
  // An append that conflicts writes nothing, its definition included.
  auto bad = make_append("d1", 0, 1);
  bad.definition_inserts.push_back(make_definition("other", 1, 300));
  CHECK(store->append(bad).err().code == errc::conflict);
  CHECK_FALSE(require_ok(store->get_definition("other", 1)).has_value());
  // In a batch, each append's definitions commit with it.
  std::vector<append_request> batch{make_append("d3", 0, 1),
                                    make_append("d4", 0, 1)};
  batch[0].definition_inserts.push_back(make_definition("x", 1, 400));
  batch[1].definition_inserts.push_back(make_definition("x", 1, 401));
  batch[1].definition_inserts.push_back(make_definition("y", 2, 402));
  for (auto& r : store->append_batch(batch))
    CHECK(r.ok());
  CHECK(require_ok(store->get_definition("x", 1))->stored_at_ms == 400);
  CHECK(require_ok(store->get_definition("y", 2)).has_value());
}

TEMPLATE_TEST_CASE("a definition insert without a name or a document is "
                   "refused",
                   "[conformance][definitions]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto req = make_append("e", 0, 1);
  req.definition_inserts.push_back({"", 1, "{}", "f", 1});
  CHECK(store->append(req).err().code == errc::invalid_argument);
  CHECK(read_all(*store, "e").empty());
  CHECK(store->put_definition({"wf", 1, "", "f", 1}).err().code
        == errc::invalid_argument);
}

TEMPLATE_TEST_CASE("a schema version 2 store is raised to the current "
                   "version at open and keeps its executions and definitions",
                   "[conformance][definitions]", BACKENDS) {
  auto be = TestType::make();
  {
    auto store = require_ok(be->open());
    auto req = make_append("old", 0, 3);
    req.definition_inserts.push_back(make_definition("wf", 1, 1));
    require_ok(store->append(req));
  }
  be->make_old(2);
  auto store = require_ok(be->open());
  CHECK(store->schema_version() == current_schema_version);
  CHECK(read_all(*store, "old").size() == 3);
  CHECK(require_ok(store->get_definition("wf", 1)).has_value());
  store.reset();
  CHECK(require_ok(be->open())->schema_version() == current_schema_version);
}

TEMPLATE_TEST_CASE("a schema version 1 store is migrated in place at open "
                   "and keeps its executions",
                   "[conformance][definitions]", BACKENDS) {
  auto be = TestType::make();
  {
    auto store = require_ok(be->open());
    require_ok(store->append(make_append("old", 0, 3)));
  }
  be->make_old(1);
  auto store = require_ok(be->open());
  CHECK(store->schema_version() == current_schema_version);
  CHECK(read_all(*store, "old").size() == 3);
  CHECK(require_ok(store->list_definitions("", false)).empty());
  CHECK(store->put_definition(make_definition("wf", 1, 1)).ok());
  CHECK(require_ok(store->get_definition("wf", 1)).has_value());
  // Reopening the migrated store keeps what it holds.
  store.reset();
  auto again = require_ok(be->open());
  CHECK(require_ok(again->get_definition("wf", 1)).has_value());
}
