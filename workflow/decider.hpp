#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proto/events.pb.h"
#include "workflow/execution_state.hpp"

namespace cerebelum::workflow {

/// Run one attempt of a call (in-process function) or a task (dispatch to
/// `task_queue`). Its outcome comes back as step_completed / step_failed
/// carrying `token`.
struct run_step_command {
  std::string step;
  std::int32_t map_index = -1;
  std::uint32_t attempt = 1;
  std::string token;
  /// `call` or `task`.
  step_kind kind = step_kind::call;
  /// Function name (call) or task type (task).
  std::string target;
  std::string task_queue;
  json input;
  std::string idempotency_key;
  std::int64_t start_to_close_timeout_ms = 0;
  std::int64_t heartbeat_timeout_ms = 0;
  /// Waits this step already went through (step_suspended): an object
  /// wait_key -> value, empty on a first run; as in step_scheduled.resume_json.
  json resume = json::object();
};

/// Arm a durable timer; when it fires, append timer_fired{timer_id}.
struct start_timer_command {
  std::string timer_id;
  std::string purpose;
  std::string step;
  std::int64_t fire_at_ms = 0;
};

/// Show an approval to operators; their answer comes back as
/// approval_granted / approval_rejected.
struct request_approval_command {
  std::string step;
  json data;
  std::int64_t timeout_ms = 0;
};

/// The execution reached a terminal status: update the index row, drop its
/// timers, cancel `abandoned` attempts (best effort), release the actor.
struct finish_command {
  execution_status status = execution_status::completed;
  json result;
  std::optional<step_error> error;
  std::vector<attempt_ref> abandoned;
};

/// Something to do once the events of the same decision are committed.
using command = std::variant<run_step_command, start_timer_command,
                             request_approval_command, finish_command>;

/// Output of one decision.
struct decision {
  /// New events to append (seq numbered from the history's length,
  /// `recorded_at_ms` = the decision time). Empty: nothing to record.
  std::vector<events::Event> events;
  /// To carry out after those events are committed, in order.
  std::vector<command> commands;
};

/// The node's policy for attempts the engine lost (`step_failed.lost`: a
/// lease expired, a heartbeat timeout, a worker lost, unregistered or
/// drained): the step is offered again without consuming its retry budget,
/// at most `max_reoffers` times per attempt slot (the first at once, then
/// after `first_delay_ms` doubling up to `max_delay_ms`); a loss beyond the
/// bound is an ordinary failure for the step's diverge rules and retry
/// policy. Each re-offer is recorded (diverge_taken, action "reoffer").
struct reoffer_policy {
  std::uint32_t max_reoffers = 5;
  std::int64_t first_delay_ms = 500;
  std::int64_t max_delay_ms = 10'000;

  /// The wait before re-offer number `n` (1-based).
  [[nodiscard]] std::int64_t delay_ms(std::uint32_t n) const;
};

/// Inputs of a decision that are not in the history.
struct decide_options {
  /// Part of attempt tokens and default idempotency keys.
  std::string execution_id;
  /// The decision time: returned by `now()`, base of timer fire times,
  /// recorded in every event the decision emits.
  std::int64_t now_ms = 0;
  /// What the decision does with lost attempts.
  reoffer_policy reoffers;
};

/// Decides on a state folded so far and folds the new events into it.
/// This is the incremental form the execution actor uses: keep one
/// `execution_state`, `apply` each input event as it is appended, then call
/// `decide`. The new events are folded into `state`: if appending them
/// fails, rebuild the state from the store. Returns an error if the state
/// has a fault (bad history).
[[nodiscard]] result<decision> decide(execution_state& state,
                                      std::int64_t now_ms,
                                      const reoffer_policy& reoffers = {});

/// The pure function: folds `history`, then decides. Deciding twice on the
/// same history with the same options gives the same output.
[[nodiscard]] result<decision> decide(const definition& def,
                                      const std::vector<events::Event>& history,
                                      const decide_options& options);

/// Commands that are due but may not have been carried out: every
/// outstanding call/task, pending timer and pending approval (all of them). The
/// actor issues them when it is (re)spawned from history; all are idempotent by
/// token or timer id.
[[nodiscard]] std::vector<command> resume_commands(const execution_state& s);

/// The first event of an execution; `started_by_note` is the name typed
/// beside a principal in `started_by` (a display note).
[[nodiscard]] events::Event
make_started_event(const definition& def, const json& input,
                   std::int64_t now_ms, std::string started_by = {},
                   std::string started_by_note = {});

/// The deterministic token of one attempt.
[[nodiscard]] std::string
attempt_token(const std::string& execution_id, const std::string& step,
              std::uint32_t visit, std::uint32_t attempt,
              std::int32_t map_index);

/// What the id of an attempt's start-to-close timeout timer starts with.
inline constexpr std::string_view timeout_timer_prefix = "timeout:";

/// The id of the timer of an attempt's start-to-close timeout.
[[nodiscard]] inline std::string
timeout_timer_id(std::string_view attempt_token) {
  return std::string{timeout_timer_prefix} + std::string{attempt_token};
}

/// The attempt token a timeout timer's id names; empty for other timers.
[[nodiscard]] inline std::string_view
timeout_timer_token(std::string_view timer_id) {
  if (timer_id.substr(0, timeout_timer_prefix.size()) != timeout_timer_prefix)
    return {};
  return timer_id.substr(timeout_timer_prefix.size());
}

} // namespace cerebelum::workflow
