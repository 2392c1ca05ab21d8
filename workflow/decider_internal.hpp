#pragma once

// Internal to the decider: one decision in progress.

#include <cstdint>
#include <optional>
#include <string>

#include "workflow/decider.hpp"

namespace cerebelum::workflow::detail {

/// Makes one decision: emits events one at a time, folding each into the
/// state at once so every next choice sees the up-to-date state.
class decision_maker {
 public:
  decision_maker(execution_state& state, std::int64_t now_ms,
                 const reoffer_policy& reoffers, decision& out);

  /// Takes one action; false when the execution waits (or is finished).
  bool step_once();

  /// Whether the events recorded so far exceed the limits of one decision
  /// (`limits::max_decision_events`, `limits::max_decision_bytes`).
  [[nodiscard]] bool over_budget() const;

  /// Fails the execution: this decision recorded too much without waiting.
  void fail_over_budget();

 private:
  using slot = execution_state::slot;

  // decider.cpp
  void emit(events::Event ev);
  eval_scope scope(const json* item = nullptr, const json* index = nullptr,
                   const json* error = nullptr) const;
  bool act_on_slot(std::size_t idx, std::int32_t map_index, const slot& sl);
  bool advance_map(std::size_t idx);
  void apply_diverge(std::size_t idx, std::int32_t map_index, const slot& sl);
  /// Offers a lost attempt again when the node's policy allows it.
  bool reoffer(const step& sp, std::int32_t map_index, const slot& sl);
  void take_branch();
  bool record_jump(const std::string& from, int target, int current);
  void complete_execution();
  void fail_execution(const step_error& error);
  void cancel_execution();

  // decider_steps.cpp
  void start_slot(std::size_t idx, std::int32_t map_index,
                  std::uint32_t attempt);
  void start_external(const step& s, events::StepScheduled sched,
                      const eval_scope& sc);
  void start_map(const step& s, events::StepScheduled sched);
  void start_sleep(const step& s, events::StepScheduled sched);
  void start_approval(const step& s, events::StepScheduled sched);
  void start_local(const step& s, events::StepScheduled sched);
  void emit_scheduled(const events::StepScheduled& sched);
  void emit_completed(const std::string& step, std::int32_t map_index,
                      std::uint32_t attempt, const std::string& token,
                      const json& result);
  void emit_failed(const std::string& step, std::int32_t map_index,
                   std::uint32_t attempt, const std::string& token,
                   const step_error& error);
  void start_timer(const std::string& id, const std::string& purpose,
                   const std::string& step, std::int64_t delay_ms);
  void start_timer_at(const std::string& id, const std::string& purpose,
                      const std::string& step, std::int64_t fire_at_ms);
  void arm_suspension(std::size_t idx, const slot& sl);

  execution_state& s_;
  const definition& def_;
  std::int64_t now_;
  reoffer_policy reoffers_;
  decision& out_;
  /// Payload bytes of `out_.events`.
  std::size_t bytes_ = 0;
};

/// A failure of kind `expression_error` from an evaluation diagnostic.
[[nodiscard]] step_error expression_failure(const std::string& where,
                                            const diagnostic& d);

} // namespace cerebelum::workflow::detail
