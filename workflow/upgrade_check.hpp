#pragma once

// Whether an execution's history can continue on another version of its
// workflow: the history is replayed against the candidate definition and
// every decision it records is compared with the decision the candidate
// makes at that point. docs/upgrades.md states the rules.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/events.pb.h"
#include "workflow/definition.hpp"

namespace cerebelum::workflow {

/// The first event of a history that the candidate definition does not
/// reproduce, and why.
struct upgrade_divergence {
  std::int64_t seq = 0;
  /// The event's type as in the history ("step_scheduled").
  std::string event_type;
  /// The step (or stage) the event names; empty if none.
  std::string step;
  std::string reason;
};

/// Replays `history` (of execution `execution_id`, oldest first) against
/// `candidate`, ignoring the version the execution started on. Returns the
/// first divergence, or nothing when the history is exactly what the
/// candidate would have recorded (the execution can continue on it). Pure:
/// no clock, no I/O.
[[nodiscard]] std::optional<upgrade_divergence>
check_upgrade(const definition& candidate, const std::string& execution_id,
              const std::vector<events::Event>& history);

/// The type of an event's payload as the history shows it
/// ("step_scheduled"), "unknown" for a type this build does not know.
[[nodiscard]] std::string event_type_of(const events::Event& e);

} // namespace cerebelum::workflow
