#pragma once

// The task router's state machine, plain C++: every open task of the node,
// per-queue ready sets, leases, waiting polls and the recent past of tokens
// that left. No actors and no clock: each call gets the time, and what the
// owner must do (answer a poll, answer a completion, send an event to an
// execution) comes back from `take_effects`. `next_due` says when the
// owner must call `expire` next: nothing here needs a periodic tick.
//
// ```
//                 upsert            poll / dispatch         complete
//   (commit) ----------> ready ---------------> leased ------------->
//   completing
//                          ^   release             |                     |
//                          +-----------------------+                     |
//                            lease expiry, worker  |     commit (remove)  v
//                            lost                  +----> failing     (left,
//                            answered)
//                                                         | commit or refusal
//                                                         v
//                                                       (left)
// ```
//
// A task leaves when a commit deletes its row (`remove`) or an execution
// refuses its outcome (`refuse`).

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "actors/attempt_token.hpp"
#include "actors/payload_limit.hpp"
#include "actors/task_api.hpp"
#include "eventstore/types.hpp"
#include "proto/events.pb.h"

namespace cerebelum::actors {

/// Options of one queue.
struct queue_options {
  /// > 0: a task of an execution prefers the worker that ran the
  /// execution's previous task for this long, then goes to any worker.
  std::int64_t sticky_ms = 0;
  /// Tasks of this queue leased at once over all workers; 0 = no limit.
  std::uint32_t max_concurrency = 0;
};

struct router_options {
  /// Lease length of steps without a heartbeat timeout (`--task-lease`):
  /// how long a silent worker keeps a task. Workers heartbeat every third
  /// of it, so a dead one is noticed within this time.
  std::chrono::milliseconds default_lease{6'000};
  /// Long-poll wait when the worker asks for 0.
  std::chrono::milliseconds default_poll_wait{30'000};
  /// Longest long-poll wait.
  std::chrono::milliseconds max_poll_wait{300'000};
  /// Heartbeat progress is recorded at most this often per attempt.
  std::chrono::milliseconds progress_interval{1'000};
  /// An outcome not committed within this time is answered `unavailable`
  /// (the worker may retry it; the lease is kept).
  std::chrono::milliseconds commit_timeout{30'000};
  /// A result, error or approval data a worker reports over this many bytes
  /// fails its step (`payload_too_large`); the node's `--max-payload-bytes`.
  std::size_t max_payload_bytes = max_payload_bytes_limit;
  /// Whether workflow definitions a worker registers may have `call` steps
  /// (native functions of this node, run on its threads with its access);
  /// the node's `--allow-worker-calls`. Off: such a registration is refused.
  bool allow_worker_calls = false;
  /// Options of queues by name; others get `defaults`.
  std::map<std::string, queue_options> queues;
  queue_options defaults;
};

/// A poll ended: with a task now leased to its worker, or with nothing.
struct poll_answered {
  std::uint64_t poll_id = 0;
  task_result<std::optional<leased_task>> result;
};

/// A completion of attempt `token` waited for its commit: its answer.
struct completion_answered {
  std::string token; ///< internal token
  task_result<complete_info> result;
};

/// An event for execution `execution_id` about attempt `token` (an outcome,
/// a failure decided by the router, progress).
struct event_to_send {
  std::string execution_id;
  std::string token;
  std::shared_ptr<const events::Event> event;
};

using queue_effect
  = std::variant<poll_answered, completion_answered, event_to_send>;

/// What `complete` decided.
struct complete_decision {
  enum kind_t {
    /// Answered now with `answer`.
    answered,
    /// The outcome went to the execution: a `completion_answered` of this
    /// token follows once committed, refused or timed out.
    pending,
    /// The router does not know the token: whether the history records an
    /// outcome of this attempt by this worker decides (off the router).
    look_in_history,
  };
  kind_t kind = answered;
  task_result<complete_info> answer;
  std::string execution_id; ///< for look_in_history
  std::string token;        ///< internal token (pending, look_in_history)
};

class task_queue {
 public:
  explicit task_queue(router_options opts);

  const router_options& options() const noexcept {
    return opts_;
  }

  // -- rows of committed appends ----------------------------------------------

  /// Adds a task from a committed row (or refreshes the payload of a known
  /// one, keeping its lease).
  void upsert(eventstore::task_row row);

  /// A commit deleted the row of `token`: a completion waiting for it is
  /// answered, with a ready task leased to its worker at `now` if it asked
  /// for one (`complete`'s `want_next`).
  void remove(const std::string& token, std::int64_t now);

  /// The execution dropped an outcome of `token` (it no longer waits for
  /// that attempt): a completion waiting for it is answered stale.
  void refuse(const std::string& token);

  // -- workers ----------------------------------------------------------------

  /// Adds or replaces a worker's queues and limit.
  void add_worker(const std::string& worker,
                  const std::vector<std::string>& queues,
                  std::uint32_t max_in_flight, std::int64_t now);

  /// Whether `worker` is registered.
  bool has_worker(const std::string& worker) const;

  /// Fails every attempt leased to `worker` (kind `worker_lost`, message
  /// `why`), ends its polls and forgets it. Returns the attempts failed.
  std::uint32_t drop_worker(const std::string& worker, const std::string& why,
                            std::int64_t now);

  /// Waits for a task of `queues` (empty: all of the worker's) until
  /// `now + wait`; the answer comes as a `poll_answered` effect, possibly
  /// at once.
  void poll(std::uint64_t poll_id, const std::string& worker,
            std::vector<std::string> queues, std::chrono::milliseconds wait,
            std::int64_t now);

  /// Ends a poll at once with nothing (no-op if it ended already).
  void cancel_poll(std::uint64_t poll_id);

  /// Hands back an attempt leased to `worker` that never reached it.
  void release(const std::string& worker, const std::string& external,
               std::int64_t now);

  /// Extends the lease of attempt `external`; may emit progress.
  task_result<heartbeat_info>
  heartbeat(const std::string& worker, const std::string& external,
            const std::string& details_json, std::int64_t now);

  /// When the start-to-close timeout of the open task `token` may fire: its
  /// lease's start plus its timeout; while no worker holds it, `now` plus
  /// the timeout (look again then). 0 when `token` is not an open task with
  /// a timeout, or its time is up.
  std::int64_t timeout_due(const std::string& token, std::int64_t now) const;

  /// Reports the outcome of attempt `external`. With `want_next`, the
  /// answer after the commit carries a task of the worker's queues that is
  /// ready then, leased to it (so a busy worker needs no poll per task).
  complete_decision complete(const std::string& worker,
                             const std::string& external,
                             const task_outcome& outcome, std::int64_t now,
                             bool want_next = false);

  // -- time -------------------------------------------------------------------

  /// Hands ready tasks to waiting polls, oldest poll first (after rows
  /// changed).
  void dispatch(std::int64_t now);

  /// Handles what is due at `now`: poll deadlines, lease expiry, outcomes
  /// not committed in time, sticky preferences that ran out.
  void expire(std::int64_t now);

  /// The earliest moment `expire` has something to do (0 = nothing).
  std::int64_t next_due();

  /// The effects of the calls so far, oldest first.
  std::vector<queue_effect> take_effects();

  // -- figures ----------------------------------------------------------------

  std::uint64_t open_tasks() const {
    return tasks_.size();
  }
  std::uint64_t ready_tasks() const;
  std::uint64_t leased_total() const {
    return leased_total_;
  }
  std::size_t waiting_polls() const {
    return pollers_.size();
  }

  /// One queue's state, for metrics.
  struct queue_figures {
    std::string queue;
    std::uint64_t ready = 0;
    std::uint64_t leased = 0;
    /// Workers registered for the queue.
    std::uint64_t workers = 0;
    /// Leases that expired since the queue was created (a count).
    std::uint64_t lease_expiries = 0;
  };
  /// Every queue known (registered by a worker or holding a task).
  [[nodiscard]] std::vector<queue_figures> figures() const;

  /// A worker's outcome of an attempt, for metrics: `seconds` from when the
  /// task could run to the outcome.
  struct finished_task {
    bool completed = false;
    double seconds = 0;
  };
  /// The outcomes since the last call.
  [[nodiscard]] std::vector<finished_task> take_finished();

 private:
  enum class lease_state { ready, leased, completing, failing };

  struct task_entry {
    eventstore::task_row row; // execution_id filled
    std::string workflow;
    std::string target;
    std::string input_json;
    std::string resume_json = "{}";
    std::int32_t map_index = -1;
    std::int64_t heartbeat_timeout_ms = 0;
    std::int64_t start_to_close_timeout_ms = 0;
    lease_state state = lease_state::ready;
    std::string owner;
    /// The current lease's secret (empty: not leased): the part of the
    /// attempt token that is not in the history (actors/attempt_token.hpp).
    std::string secret;
    /// When its current lease began (0: not leased).
    std::int64_t leased_at_ms = 0;
    std::int64_t lease_expires_at_ms = 0;
    std::int64_t last_progress_ms = 0;
    /// Sticky routing: preferred worker until `sticky_until_ms`.
    std::string sticky_worker;
    std::int64_t sticky_until_ms = 0;
    /// A worker's completion waits for the commit (state completing).
    bool completion_waits = false;
    /// That completion asked for the worker's next task.
    bool next_wanted = false;
    /// Since when the outcome or failure is on its way.
    std::int64_t completing_since_ms = 0;
    /// The router's failure of the attempt (state failing), sent again
    /// while no commit or refusal answers it (its execution may be parked).
    std::shared_ptr<const events::Event> failure;
  };

  struct worker_entry {
    std::set<std::string> queues;
    std::uint32_t max_in_flight = 1;
    std::unordered_set<std::string> leased; // tokens
  };

  struct queue_entry {
    /// (available_at, token)
    std::set<std::pair<std::int64_t, std::string>> ready;
    std::uint32_t leased = 0;
    std::uint64_t lease_expiries = 0;
  };

  struct poller {
    std::string worker;
    std::vector<std::string> queues;
    std::int64_t deadline_ms = 0;
  };

  /// Why a token left: what later calls about it are told.
  struct gone_entry {
    std::string worker;
    std::string secret; // of the last lease: a retry must still prove it
    std::string why;
    bool recorded = false;  // the worker's own outcome was committed
    bool cancelled = false; // the execution dropped the task while leased
  };

  /// A deadline: of a poll (`poll_id`) or of a task's current state
  /// (`token`). Entries whose deadline moved are skipped when met.
  struct deadline {
    std::int64_t due = 0;
    std::uint64_t poll_id = 0;
    std::string token;
    bool operator>(const deadline& other) const {
      return due > other.due;
    }
  };

  struct pick_result {
    std::string token;
    /// No token: when a task held for another worker falls back to any.
    std::int64_t sticky_until_ms = 0;
  };

  const queue_options& qopts(const std::string& q) const;
  std::int64_t lease_length(const task_entry& e) const;
  void remember_gone(const std::string& token, gone_entry entry);
  /// Whether `ref` names the current lease of the open task `e` by
  /// `worker` (its owner and its secret).
  static bool holds(const task_entry& e, const std::string& worker,
                    const attempt_ref& ref);
  void detach(task_entry& e, const std::string& token);
  pick_result pick(const std::string& worker,
                   const std::vector<std::string>& queues, std::int64_t now);
  /// Leases the ready task `token` to `worker` (within its limit).
  leased_task lease(worker_entry& w, const std::string& worker,
                    const std::string& token, std::int64_t now);
  /// A ready task of `worker`'s queues leased to it now, if any and if it
  /// has room.
  std::optional<leased_task> lease_next(const std::string& worker,
                                        std::int64_t now);
  static void parse_payload(task_entry& e);
  void fail_attempt(const std::string& token, const std::string& kind,
                    const std::string& message, std::int64_t now);
  void send(const task_entry& e, events::Event ev);
  void answer_poll(std::uint64_t id, std::optional<leased_task> task);
  void answer_completion(const std::string& token,
                         task_result<complete_info> result);
  leased_task to_leased(const task_entry& e) const;
  void add_deadline(std::int64_t due, std::uint64_t poll_id,
                    const std::string& token);
  /// The deadline `d` still stands (its poll waits, its task's state
  /// still ends at `d.due`).
  bool stands(const deadline& d) const;

  router_options opts_;
  std::unordered_map<std::string, task_entry> tasks_; // by internal token
  std::map<std::string, queue_entry> queues_;
  std::vector<finished_task> finished_;
  std::map<std::string, worker_entry> workers_;
  std::map<std::uint64_t, poller> pollers_; // FIFO by id
  std::unordered_map<std::string, gone_entry> gone_;
  std::deque<std::string> gone_order_;
  /// execution id -> the worker that ran its last task (sticky routing).
  std::unordered_map<std::string, std::string> last_worker_;
  /// Earliest moment a waiting poll may take a task held for another
  /// worker (0 = none); recomputed by each dispatch.
  std::int64_t sticky_due_ = 0;
  std::uint64_t leased_total_ = 0;
  std::priority_queue<deadline, std::vector<deadline>, std::greater<>>
    deadlines_;
  std::vector<queue_effect> effects_;
};

} // namespace cerebelum::actors
