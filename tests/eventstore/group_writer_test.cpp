// The group-commit writer and the fault-injecting decorator, run against
// every backend.

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "eventstore/faulty_store.hpp"
#include "eventstore/group_writer.hpp"
#include "tests/eventstore/backends.hpp"
#include "tests/eventstore/helpers.hpp"

using namespace cerebelum::eventstore;
using namespace cerebelum::eventstore::testing;

#define BACKENDS sqlite_tag, pg_tag

namespace {

/// Holds every `append_batch` until `open()` is called.
class gated_store final : public store_decorator {
 public:
  using store_decorator::store_decorator;

  std::vector<append_result>
  append_batch(std::span<const append_request> reqs) override {
    {
      std::unique_lock lock{mtx_};
      ++waiting_;
      cv_.notify_all();
      cv_.wait(lock, [this] {
        return open_;
      });
    }
    return store_decorator::append_batch(reqs);
  }

  void open() {
    std::lock_guard guard{mtx_};
    open_ = true;
    cv_.notify_all();
  }

  /// Blocks until a batch is held at the gate.
  void await_waiting() {
    std::unique_lock lock{mtx_};
    cv_.wait(lock, [this] {
      return waiting_ > 0;
    });
  }

 private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

} // namespace

TEMPLATE_TEST_CASE("the writer groups concurrent appends from many threads "
                   "and acknowledges each after commit",
                   "[writer]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  group_writer writer{store};
  constexpr int threads = 8;
  constexpr int per_thread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto id = "w" + std::to_string(t);
      for (int i = 0; i < per_thread; ++i) {
        auto res = writer.append_and_wait(make_append(id, i * 2, 2));
        if (!res.ok() || res->next_seq != i * 2 + 2) ++failures;
      }
    });
  for (auto& th : pool)
    th.join();
  CHECK(failures == 0);
  for (int t = 0; t < threads; ++t)
    CHECK(read_all(*store, "w" + std::to_string(t)).size() == 2 * per_thread);
  auto stats = writer.stats();
  CHECK(stats.appends == threads * per_thread);
  CHECK(stats.groups <= stats.appends);
}

TEMPLATE_TEST_CASE("the writer batches a burst of callbacks into few groups",
                   "[writer]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto gate = std::make_shared<gated_store>(store);
  group_writer writer{gate};
  std::atomic<int> acked{0};
  std::atomic<int> conflicts{0};
  // The first group is held at the gate while 200 more queue up behind it.
  REQUIRE(writer.submit(make_append("first", 0, 1), [&](append_result r) {
    acked += r.ok();
  }) == submit_status::accepted);
  gate->await_waiting();
  for (int i = 0; i < 200; ++i)
    REQUIRE(writer.submit(make_append("burst" + std::to_string(i % 100), 0, 1),
                          [&](append_result r) {
                            if (r.ok())
                              ++acked;
                            else if (r.err().code == errc::conflict)
                              ++conflicts;
                          })
            == submit_status::accepted);
  gate->open();
  writer.close();
  CHECK(acked == 101);
  CHECK(conflicts == 100); // the second append to each burst id
  auto stats = writer.stats();
  CHECK(stats.groups == 2);
  CHECK(stats.largest_group == 200);
}

TEMPLATE_TEST_CASE("a fault before commit fails the group and writes nothing",
                   "[writer][fault]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto faulty = std::make_shared<faulty_store>(
    store, std::vector<fault_plan>{{2, fault_point::before_commit}});
  require_ok(faulty->append(make_append("f", 0, 1)));
  auto res = faulty->append(make_append("f", 1, 1));
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::injected_fault);
  CHECK(res.err().retryable);
  CHECK_FALSE(res.err().possibly_committed);
  CHECK(read_all(*store, "f").size() == 1);
  // The retry of the same append succeeds.
  CHECK(require_ok(faulty->append(make_append("f", 1, 1))).next_seq == 2);
  CHECK(faulty->calls() == 3);
}

TEMPLATE_TEST_CASE("an append whose commit reply was lost is reported as "
                   "possibly committed, never as success",
                   "[writer][fault]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto faulty = std::make_shared<faulty_store>(
    store, std::vector<fault_plan>{{1, fault_point::after_commit}});
  writer_options opts;
  opts.verify_in_doubt = false;
  group_writer writer{faulty, opts};
  auto res = writer.append_and_wait(make_append("g", 0, 2));
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().possibly_committed);
  // It did commit: the caller must reload before deciding again.
  CHECK(read_all(*store, "g").size() == 2);
}

TEMPLATE_TEST_CASE("the writer verifies an in-doubt group and acknowledges "
                   "only the appends it finds",
                   "[writer][fault]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto faulty = std::make_shared<faulty_store>(
    store, std::vector<fault_plan>{{1, fault_point::after_commit}});
  group_writer writer{faulty};
  auto res = writer.append_and_wait(make_append("h", 0, 2));
  CHECK(require_ok(res).next_seq == 2);
  CHECK(writer.stats().in_doubt_verified == 1);
  // An in-doubt append that did not commit is reported as absent.
  auto lost = std::make_shared<faulty_store>(store);
  class lying_store final : public store_decorator {
   public:
    using store_decorator::store_decorator;
    std::vector<append_result>
    append_batch(std::span<const append_request> reqs) override {
      return std::vector<append_result>(
        reqs.size(),
        append_result{make_error(errc::unavailable, "lost", true, true)});
    }
  };
  group_writer writer2{std::make_shared<lying_store>(store)};
  auto absent = writer2.append_and_wait(make_append("h", 2, 1));
  REQUIRE_FALSE(absent.ok());
  CHECK_FALSE(absent.err().possibly_committed);
  CHECK(absent.err().retryable);
  CHECK_THAT(absent.err().message, Catch::Contains("not in the store"));
}

TEMPLATE_TEST_CASE("try_submit reports overloaded when the queue is full and "
                   "then never runs the callback",
                   "[writer]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto gate = std::make_shared<gated_store>(store);
  writer_options opts;
  opts.max_queued_requests = 4;
  group_writer writer{gate, opts};
  std::atomic<int> callbacks{0};
  auto cb = [&](append_result) {
    ++callbacks;
  };
  REQUIRE(writer.try_submit(make_append("o", 0, 1), cb)
          == submit_status::accepted);
  gate->await_waiting(); // the writer holds 1; the queue is empty again
  int accepted = 0;
  int overloaded = 0;
  for (int i = 0; i < 10; ++i) {
    auto st = writer.try_submit(make_append("o" + std::to_string(i), 0, 1), cb);
    accepted += st == submit_status::accepted;
    overloaded += st == submit_status::overloaded;
  }
  CHECK(accepted == 4);
  CHECK(overloaded == 6);
  gate->open();
  writer.close();
  CHECK(callbacks == 5);
  CHECK(writer.try_submit(make_append("late", 0, 1), cb)
        == submit_status::closed);
  CHECK(writer.append_and_wait(make_append("late", 0, 1)).err().code
        == errc::closed);
}

TEMPLATE_TEST_CASE("a blocked submitter resumes when the writer frees room",
                   "[writer]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto gate = std::make_shared<gated_store>(store);
  writer_options opts;
  opts.max_queued_requests = 1;
  group_writer writer{gate, opts};
  std::atomic<int> done{0};
  auto cb = [&](append_result r) {
    done += r.ok();
  };
  REQUIRE(writer.submit(make_append("p0", 0, 1), cb)
          == submit_status::accepted);
  gate->await_waiting();
  REQUIRE(writer.submit(make_append("p1", 0, 1), cb)
          == submit_status::accepted);
  std::atomic<bool> third_returned{false};
  std::thread blocked{[&] {
    CHECK(writer.submit(make_append("p2", 0, 1), cb)
          == submit_status::accepted);
    third_returned = true;
  }};
  // The third submit must still be waiting: the queue holds p1.
  CHECK(writer.try_submit(make_append("p3", 0, 1), cb)
        == submit_status::overloaded);
  CHECK_FALSE(third_returned);
  gate->open();
  blocked.join();
  writer.close();
  CHECK(done == 3);
  CHECK(read_all(*store, "p2").size() == 1);
}

TEST_CASE("a store that throws fails its group as possibly committed and the "
          "writer keeps running",
          "[writer]") {
  auto be = make_sqlite_backend();
  auto store = require_ok(be->open());
  class throwing_store final : public store_decorator {
   public:
    using store_decorator::store_decorator;
    std::vector<append_result>
    append_batch(std::span<const append_request> reqs) override {
      if (++calls_ == 1) throw std::runtime_error("boom");
      return store_decorator::append_batch(reqs);
    }

   private:
    int calls_ = 0;
  };
  writer_options opts;
  opts.verify_in_doubt = false;
  group_writer writer{std::make_shared<throwing_store>(store), opts};
  auto first = writer.append_and_wait(make_append("z", 0, 1));
  REQUIRE_FALSE(first.ok());
  CHECK(first.err().possibly_committed);
  CHECK_THAT(first.err().message, Catch::Contains("boom"));
  CHECK(require_ok(writer.append_and_wait(make_append("z", 0, 1))).next_seq
        == 1);
}

TEMPLATE_TEST_CASE("two stores on one database never both commit the same "
                   "sequence number",
                   "[writer][concurrency]", BACKENDS) {
  auto be = TestType::make();
  auto store_a = require_ok(be->open());
  auto store_b = require_ok(be->open()); // a second node on the same data
  group_writer writer_a{store_a};
  group_writer writer_b{store_b};
  constexpr int executions = 4;
  constexpr int attempts = 60;
  std::atomic<int> committed{0};
  auto race = [&](group_writer& writer, event_store& store, int salt) {
    for (int i = 0; i < attempts; ++i) {
      auto id = "race" + std::to_string((i + salt) % executions);
      auto row = store.get_execution(id);
      REQUIRE(row.ok());
      std::int64_t next = row->has_value() ? (*row)->next_seq : 0;
      auto res = writer.append_and_wait(make_append(id, next, 2));
      if (res.ok())
        ++committed;
      else
        CHECK(res.err().code == errc::conflict);
    }
  };
  std::thread a{[&] {
    race(writer_a, *store_a, 0);
  }};
  std::thread b{[&] {
    race(writer_b, *store_b, 1);
  }};
  a.join();
  b.join();
  std::int64_t total = 0;
  for (int e = 0; e < executions; ++e) {
    auto id = "race" + std::to_string(e);
    auto events = read_all(*store_a, id);
    for (std::size_t s = 0; s < events.size(); ++s)
      CHECK(events[s].seq == static_cast<std::int64_t>(s));
    auto row = require_ok(store_a->get_execution(id));
    REQUIRE(row.has_value());
    CHECK(row->next_seq == static_cast<std::int64_t>(events.size()));
    total += static_cast<std::int64_t>(events.size());
  }
  CHECK(total == 2 * committed);
  CHECK(committed > 0);
}
