#pragma once

// An in-memory engine_api for testing the transports: executions are plain
// records whose status the test sets; no actors, no store.

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/engine_api.hpp"

namespace cerebelum::test {

/// A test double of the engine's operations. Knows the workflows "order"
/// and "nap" (which completes `nap_time` after its start); starting "busy"
/// answers `overloaded`.
class fake_engine : public actors::engine_api {
 public:
  /// Sets the status of `id` (test setup).
  void set_status(const std::string& id, eventstore::execution_status st);

  caf::expected<actors::start_response>
  start(const actors::start_request& req) override;
  /// Answers at once, with what `start` answers.
  void start_async(const actors::start_request& req,
                   start_callback done) override {
    done(start(req));
  }
  caf::expected<actors::execution_view>
  describe(const std::string& id) override;
  caf::expected<actors::list_response>
  list(const actors::list_request& req) override;
  caf::expected<std::vector<events::Event>>
  history(const std::string& id, std::int64_t from_seq) override;
  caf::expected<actors::execution_view>
  approve(const std::string& id, const actors::operator_id& who,
          const actors::json& data) override;
  caf::expected<actors::execution_view>
  reject(const std::string& id, const actors::operator_id& who,
         const std::string& reason) override;
  caf::expected<actors::execution_view>
  cancel(const std::string& id, const actors::operator_id& who,
         const std::string& reason) override;
  caf::expected<actors::execution_view>
  wait(const std::string& id, std::chrono::milliseconds timeout) override;
  /// Answered by one polling thread (every 5 ms) however many wait: a wait
  /// holds no thread, as the engine's.
  void wait_async(const std::string& id, std::chrono::milliseconds timeout,
                  wait_callback done) override;
  /// The history `history` gives, in one batch, then the end: the fake's
  /// histories do not grow.
  actors::follow_stop follow(const std::string& id, std::int64_t from_seq,
                             actors::follow_sink sink) override;
  std::vector<actors::workflow_view> workflows() override;
  /// "order" is owned by token 'a', recorded as taken from token 'b' by
  /// token 'admin' at 5; any other name is unknown.
  caf::expected<actors::workflow_owner_view>
  workflow_owner(const std::string& name) override;
  actors::health_view health() override;
  actors::node_metrics& metrics() override {
    return metrics_;
  }
  std::string metrics_text() override {
    return metrics_.text();
  }
  /// Text "bad": invalid_argument; otherwise workflow "order" version 8
  /// with "o-1" compatible and "o-2" diverging at seq 1 (step "validate").
  caf::expected<actors::upgrade_report>
  check_upgrade(const std::string& definition_text,
                const std::string& file) override;
  /// `check_upgrade`'s report with the compatible "o-1" migrated; `by`
  /// empty: invalid_argument. `migrated_by` records the last `by`.
  caf::expected<actors::upgrade_report>
  migrate(const std::string& definition_text, const std::string& file,
          const actors::operator_id& who) override;
  std::string migrated_by;
  /// What `health` answers.
  actors::health_view health_answer;
  /// Real metrics, counted by the front ends under test.
  actors::node_metrics metrics_;
  /// One dead letter, id 1, of execution "dl-1" on queue "billing", until
  /// it is retried.
  caf::expected<actors::dead_letter_list>
  dead_letters(const std::string& queue, std::size_t page_size,
               const std::string& page_token) override;
  caf::expected<actors::execution_view>
  retry_dead_letter(std::int64_t id, const actors::operator_id& who) override;

  /// The last approval's operator, note and data.
  std::string last_by;
  std::string last_note;
  actors::json last_data;

  /// How long a "nap" execution runs.
  std::chrono::milliseconds nap_time{1000};

  /// Answers the waits left `unavailable` and joins the polling thread.
  ~fake_engine() override;

 private:
  struct pending_wait {
    std::string id;
    std::chrono::steady_clock::time_point deadline;
    wait_callback done;
  };

  void poll_waits();

  std::mutex mtx_;
  std::mutex waiters_mtx_;
  std::condition_variable waiters_cv_;
  std::vector<pending_wait> waits_;
  std::thread poller_;
  bool stopping_ = false;
  std::map<std::string, actors::execution_view> executions_;
  /// When each "nap" execution completes.
  std::map<std::string, std::chrono::steady_clock::time_point> naps_;
  int next_id_ = 1;
  bool dead_letter_retried_ = false;
};

} // namespace cerebelum::test
