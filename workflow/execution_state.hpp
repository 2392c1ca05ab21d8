#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/events.pb.h"
#include "workflow/definition.hpp"

namespace cerebelum::workflow {

/// What users see of an execution.
enum class execution_status {
  running,
  sleeping,
  awaiting_approval,
  completed,
  failed,
  cancelled,
};

[[nodiscard]] const char* to_string(execution_status s);

/// An error as the decider sees it (mirrors `events::ErrorInfo`).
struct step_error {
  std::string kind;
  std::string message;
  json details;
  bool retryable = false;

  [[nodiscard]] json to_json() const;
  [[nodiscard]] static step_error from_proto(const events::ErrorInfo& e);
  void to_proto(events::ErrorInfo& out) const;
};

/// One scheduled attempt of a step (or of one map child) whose outcome is
/// still awaited.
struct attempt_ref {
  std::string step;
  /// -1 unless a child of a map step.
  std::int32_t map_index = -1;
  std::uint32_t attempt = 0;
  std::string token;
  step_kind kind = step_kind::call;
};

/// A durable timer the execution waits for.
struct pending_timer {
  std::string id;
  /// "sleep", "retry_backoff", "approval_timeout" or "step_timeout".
  std::string purpose;
  std::string step;
  std::int64_t fire_at_ms = 0;
};

/// An approval waiting for an operator.
struct pending_approval {
  std::string step;
  json data;
  std::int64_t requested_at_ms = 0;
  /// 0 = waits forever.
  std::int64_t timeout_ms = 0;
  /// The slot waiting: -1 unless a child of a map step.
  std::int32_t map_index = -1;
  /// Token of the attempt that waits (an approval step's attempt, or the
  /// suspended task attempt).
  std::string token;
};

/// Why a failed execution failed, when the cause is a `task` step (or map
/// child of tasks) whose failure no diverge rule handled: what a dead-letter
/// row records and what an operator retries with `execution_resumed`.
struct dead_letter_info {
  std::string step;
  /// -1 unless a child of a map step.
  std::int32_t map_index = -1;
  /// The last attempt (the one that failed).
  std::uint32_t attempt = 0;
  std::string attempt_token;
  std::string task_queue;
  /// The task type.
  std::string target;
  /// The evaluated input of the last attempt.
  json input;
  /// The step's own error (not the execution's summary).
  step_error error;
};

/// Lifecycle of one attempt slot (a step, or one child of a map step).
enum class slot_phase {
  /// Not started in the current visit of its stage.
  idle,
  /// Scheduled; its outcome (result, timer, approval) is awaited.
  scheduled,
  /// Resolved successfully by an input (timer, approval); the decider
  /// records step_completed next.
  resolve_ok,
  /// Resolved as a failure by an input (timeout, rejection); the decider
  /// records step_failed next.
  resolve_fail,
  /// Failed; the decider applies the diverge rules next.
  failed,
  /// Waiting for a retry backoff timer.
  backoff,
  /// Backoff over; the decider schedules the next attempt.
  retry_ready,
  /// Finished (completed, or failed and continued).
  done,
  /// Failed and the execution fails with it.
  failed_final,
  /// The attempt suspended itself (step_suspended); the decider arms the
  /// wait next (a step_resume timer or an approval).
  suspending,
  /// Suspended; waits for its step_resume timer or its approval.
  suspended,
  /// The wait is over; the decider schedules the next attempt (which does
  /// not count against the retry budget).
  resume_ready,
};

/// The state of one execution: a pure fold over its history.
///
/// `apply` is the only mutator; any prefix folded and then the rest gives the
/// same state as folding the whole history. It never evaluates expressions
/// and never reads a clock: everything it needs is in the events.
class execution_state {
 public:
  /// One attempt slot; public for the decider (same module).
  struct slot {
    slot_phase phase = slot_phase::idle;
    std::uint32_t attempt = 0;
    std::string token;
    json pending_result;
    step_error error;
    /// An approval timeout came from the decider's own timer, so the
    /// decider records approval_timed_out before the failure.
    bool record_timeout = false;
    /// What the current attempt was scheduled with (for resume_commands).
    events::StepScheduled scheduled;
    /// Failures counted against the retry budget (since the stage was
    /// entered or the execution was resumed). Suspensions do not count, nor
    /// lost attempts that were offered again.
    std::uint32_t failures = 0;
    /// Lost attempts offered again (diverge_taken "reoffer"), counted like
    /// `failures`, against the node's re-offer bound.
    std::uint32_t reoffers = 0;
    /// The current failure is the engine's loss (step_failed.lost).
    bool lost = false;
    /// Waits already done in this visit: wait_key -> value (an object).
    json resume = json::object();
    /// The suspension being waited for (phases suspending, suspended).
    events::StepSuspended suspension;
  };

  /// Per-step bookkeeping; public for the decider (same module).
  struct step_runtime {
    /// How many times its stage was entered (part of attempt tokens).
    std::uint32_t visit = 0;
    slot self;
    /// Map steps only.
    json items;
    std::vector<slot> children;
    std::vector<json> child_results;
  };

  /// `def` must outlive the state.
  execution_state(const definition& def, std::string execution_id);

  /// The history to fold was migrated (execution_migrated): it started on
  /// `chain.front()` and moved through the versions of `chain` in order to
  /// the last, which must be this state's definition. Called before the
  /// first event; without it the history must start on the definition's
  /// version and hold no migration.
  void expect_versions(std::vector<std::uint64_t> chain);
  /// The versions the history folded so far ran on, oldest first: the one
  /// it started on and each it was migrated to.
  [[nodiscard]] const std::vector<std::uint64_t>& versions() const noexcept {
    return versions_;
  }

  /// Folds one event. An error means the history cannot be replayed with
  /// this definition (wrong version, unknown core event, bad order); the
  /// state then refuses to decide (see `fault`).
  workflow::result<ok_t> apply(const events::Event& event);

  [[nodiscard]] execution_status status() const;
  [[nodiscard]] bool started() const noexcept {
    return started_;
  }
  [[nodiscard]] bool terminal() const noexcept;
  [[nodiscard]] const std::optional<diagnostic>& fault() const noexcept {
    return fault_;
  }

  /// Attempts whose outcome is awaited (calls, tasks, sleeps, approvals).
  /// A suspended task attempt is over: it is not listed (its wait shows in
  /// `timers()` / `approvals()`).
  [[nodiscard]] std::vector<attempt_ref> outstanding() const;
  /// Whether a step_completed/step_failed/step_suspended carrying `token`
  /// would be accepted now; late results of old attempts are not.
  [[nodiscard]] bool accepts_result(const std::string& token) const;
  /// Results by step name (what `steps.<name>` reads).
  [[nodiscard]] const json& results() const noexcept {
    return results_;
  }
  [[nodiscard]] std::vector<pending_timer> timers() const;
  /// The approval operators decide next (the oldest pending one).
  [[nodiscard]] const std::optional<pending_approval>&
  approval() const noexcept {
    return approval_;
  }
  /// Every pending approval, oldest first (parallel members and map
  /// children may wait at the same time). approval_granted/_rejected name a
  /// step; they answer the oldest pending approval of that step.
  [[nodiscard]] const std::vector<pending_approval>&
  approvals() const noexcept {
    return approvals_;
  }
  /// Set while the execution is failed because a `task` step (or a map
  /// child of tasks) failed and no diverge rule handled it; unset otherwise
  /// (also after execution_resumed).
  [[nodiscard]] std::optional<dead_letter_info> dead_letter() const;
  /// Earliest pending timer, if any (the index row's wake time).
  [[nodiscard]] std::optional<std::int64_t> next_wake_ms() const;
  /// The execution's result once completed.
  [[nodiscard]] const json& result() const noexcept {
    return result_;
  }
  /// The execution's error once failed.
  [[nodiscard]] const std::optional<step_error>& error() const noexcept {
    return error_;
  }
  [[nodiscard]] const json& input() const noexcept {
    return input_;
  }
  [[nodiscard]] std::uint32_t iterations() const noexcept {
    return iterations_;
  }
  /// Sequence number the next event will carry.
  [[nodiscard]] std::int64_t next_seq() const noexcept {
    return next_seq_;
  }
  /// Name of the current stage ("" before start, "end" after the last).
  [[nodiscard]] std::string phase() const;
  [[nodiscard]] const std::string& execution_id() const noexcept {
    return execution_id_;
  }
  [[nodiscard]] const definition& def() const noexcept {
    return *def_;
  }

  /// Everything, as JSON (tests compare states with it; handy for debug).
  [[nodiscard]] json snapshot() const;

  // -- used by the decider ---------------------------------------------------

  [[nodiscard]] int stage() const noexcept {
    return stage_;
  }
  [[nodiscard]] bool branch_pending() const noexcept {
    return branch_pending_;
  }
  [[nodiscard]] bool cancel_pending() const noexcept {
    return cancel_requested_ && !terminal();
  }
  [[nodiscard]] const std::string& cancel_by() const noexcept {
    return cancel_by_;
  }
  /// The name typed beside the principal who asked to cancel (a note).
  [[nodiscard]] const std::string& cancel_by_note() const noexcept {
    return cancel_by_note_;
  }
  [[nodiscard]] const std::string& cancel_reason() const noexcept {
    return cancel_reason_;
  }
  [[nodiscard]] const step_runtime& runtime(std::size_t step) const {
    return steps_[step];
  }
  [[nodiscard]] const json* error_of(const std::string& step) const;
  [[nodiscard]] std::int64_t started_at_ms() const noexcept {
    return started_at_ms_;
  }

 private:
  slot* find_slot(const std::string& step, std::int32_t map_index);
  void enter_stage(int stage);
  void maybe_advance();
  void on_started(const events::ExecutionStarted& e);
  void on_scheduled(const events::StepScheduled& e);
  void on_completed(const events::StepCompleted& e);
  void on_failed(const events::StepFailed& e);
  void on_diverge(const events::DivergeTaken& e);
  void on_branch(const events::BranchTaken& e);
  void on_timer_started(const events::TimerStarted& e);
  void on_timer_fired(const events::TimerFired& e);
  void on_approval(const events::Event& e);
  void on_approval_requested(const events::ApprovalRequested& r);
  void on_suspended(const events::StepSuspended& e);
  void on_resumed(const events::ExecutionResumed& e);
  void on_migrated(const events::ExecutionMigrated& e);
  void on_terminal(const events::Event& e);
  void drop_approvals(const std::function<bool(const pending_approval&)>& f);
  void drop_timers_of(const std::string& step);
  void drop_timers_of_token(const std::string& token);
  slot* slot_by_token(const std::string& step, const std::string& token);
  void set_fault(std::string msg);

  const definition* def_;
  std::string execution_id_;
  bool started_ = false;
  /// See expect_versions (empty: only the definition's version).
  std::vector<std::uint64_t> chain_;
  std::vector<std::uint64_t> versions_;
  json input_;
  std::int64_t started_at_ms_ = 0;
  int stage_ = -1;
  bool branch_pending_ = false;
  bool cancel_requested_ = false;
  std::string cancel_by_;
  std::string cancel_by_note_;
  std::string cancel_reason_;
  std::uint32_t iterations_ = 0;
  std::optional<execution_status> final_;
  json result_;
  std::optional<step_error> error_;
  json results_ = json::object();
  json errors_ = json::object();
  std::vector<step_runtime> steps_;
  std::map<std::string, pending_timer> timers_;
  std::vector<pending_approval> approvals_;
  /// Mirror of approvals_.front().
  std::optional<pending_approval> approval_;
  std::int64_t next_seq_ = 0;
  std::optional<diagnostic> fault_;
};

/// Parses JSON text from an event; invalid or empty text reads as null.
[[nodiscard]] json parse_json_text(const std::string& text);

/// Compact JSON text for an event (invalid UTF-8 replaced, never throws).
[[nodiscard]] std::string json_text(const json& value);

} // namespace cerebelum::workflow
