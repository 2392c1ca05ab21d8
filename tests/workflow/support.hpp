#pragma once

// Shared helpers of the workflow tests: a scripted stand-in for the
// execution actor that feeds inputs as events and calls the decider.

#include <string>
#include <vector>

#include "workflow/decider.hpp"
#include "workflow/loader.hpp"

namespace cerebelum::workflow::test {

/// Loads YAML or fails the test with the diagnostic.
definition must_load(const std::string& yaml);

/// A 683-byte YAML alias bomb named `name`: 9 levels of 10 aliases in an
/// input schema enum, 10^9 strings once expanded.
std::string alias_bomb(const std::string& name = "bomb");

/// One-line description of an event ("scheduled a a1", "branch x -> y").
std::string describe(const events::Event& e);

/// One-line description of a command ("run call f a a1 {...}").
std::string describe(const command& c);

/// Drives one execution: keeps its history, appends inputs, decides.
class harness {
 public:
  explicit harness(definition def, json input = json::object(),
                   std::string execution_id = "ex-1");

  /// Decides at the current time and appends the decision's events.
  decision decide();

  /// Runs one script line, then decides. Lines:
  ///   ok STEP[i] JSON        complete the outstanding attempt
  ///   err STEP[i] KIND [retryable] [MESSAGE...]
  ///   lost STEP[i] KIND      the router's failure (lost, retryable)
  ///   late STEP[i] JSON      complete with an old (abandoned) token
  ///   fire STEP              fire the earliest timer of STEP at fire_at
  ///   grant STEP | reject STEP | timeout STEP (approval_timed_out)
  ///   suspend STEP[i] KEY sleep MS      step_suspended (durable sleep)
  ///   suspend STEP[i] KEY approval [TIMEOUT_MS [DATA]]
  ///   resume STEP[i]         execution_resumed (dead-letter retry)
  ///   progress STEP[i] [JSON] step_progress of the outstanding attempt
  ///   cancel | wait MS
  decision run(const std::string& line);

  /// Runs every line; returns the descriptions of all events so far
  /// (execution_started excluded).
  std::vector<std::string> run_all(const std::vector<std::string>& lines);

  /// Descriptions of every event so far (execution_started excluded).
  [[nodiscard]] std::vector<std::string> events() const;
  /// All commands produced so far, described.
  [[nodiscard]] const std::vector<std::string>& commands() const {
    return commands_;
  }
  [[nodiscard]] execution_state state() const;
  [[nodiscard]] const std::vector<events::Event>& history() const {
    return history_;
  }
  [[nodiscard]] const definition& def() const {
    return def_;
  }
  std::int64_t now = 1000;
  /// The node's policy for lost attempts the decisions use.
  reoffer_policy reoffers;

  /// Appends an input event (seq and recorded time filled in).
  void append(events::Event e);
  /// The outstanding attempt of `step` / map child (fails if none).
  attempt_ref outstanding(const std::string& step, int map_index = -1) const;

  /// The latest attempt of `step` that is no longer outstanding.
  attempt_ref stale(const std::string& step, int map_index = -1) const;

 private:
  definition def_;
  std::string execution_id_;
  std::vector<events::Event> history_;
  std::vector<std::string> commands_;
};

} // namespace cerebelum::workflow::test
