#pragma once

// Operators' commands (approve, reject, cancel, retry of a dead letter,
// migration to another version) as events. The execution's actor, the only
// writer of its history, builds the event of a command against its current
// state when it folds the command into its next append, and answers the
// operator after that commit.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/messages.hpp"
#include "workflow/execution_state.hpp"

namespace cerebelum::actors {

inline operator_command_ptr make_approval(operator_id who,
                                          nlohmann::json data) {
  return std::make_shared<const operator_command>(
    operator_command{.what = operator_command::kind::approve,
                     .by = std::move(who.by),
                     .note = std::move(who.note),
                     .data = std::move(data)});
}

inline operator_command_ptr make_rejection(operator_id who,
                                           std::string reason) {
  return std::make_shared<const operator_command>(
    operator_command{.what = operator_command::kind::reject,
                     .by = std::move(who.by),
                     .note = std::move(who.note),
                     .reason = std::move(reason)});
}

inline operator_command_ptr make_cancellation(operator_id who,
                                              std::string reason) {
  return std::make_shared<const operator_command>(
    operator_command{.what = operator_command::kind::cancel,
                     .by = std::move(who.by),
                     .note = std::move(who.note),
                     .reason = std::move(reason)});
}

inline operator_command_ptr
make_dead_letter_retry(operator_id who, std::int64_t id, std::string task_id) {
  return std::make_shared<const operator_command>(
    operator_command{.what = operator_command::kind::retry_dead_letter,
                     .by = std::move(who.by),
                     .note = std::move(who.note),
                     .dead_letter_id = id,
                     .dead_letter_task = std::move(task_id)});
}

inline operator_command_ptr
make_migration(operator_id who,
               std::shared_ptr<const workflow::definition> to) {
  return std::make_shared<const operator_command>(
    operator_command{.what = operator_command::kind::migrate,
                     .by = std::move(who.by),
                     .note = std::move(who.note),
                     .to = std::move(to)});
}

/// The event that records `cmd` on `s` (not yet folded), or an error when it
/// does not apply: not_awaiting_approval, already_terminal, or, for a
/// dead-letter retry of an execution not failed by that task,
/// not_retryable. An event without payload means that there is nothing
/// to record (a cancel already asked for).
caf::expected<events::Event> command_event(const workflow::execution_state& s,
                                           const operator_command& cmd,
                                           std::int64_t now);

/// A migration ready to append: its event and the execution folded again,
/// event included, on the version it moves to.
struct migration {
  events::Event event;
  std::unique_ptr<workflow::execution_state> state;
};

/// The migration `cmd` of `s`, whose committed history is `history`: the
/// history is held to the new version first (workflow::check_upgrade).
/// Nothing (no error) when `s` runs that version already. Errors:
/// already_terminal, invalid_argument (another workflow), incompatible
/// (naming the first event that differs), internal (the history does not
/// fold on the new version after all).
caf::expected<std::optional<migration>>
migration_of(const workflow::execution_state& s, const operator_command& cmd,
             const std::vector<events::Event>& history, std::int64_t now);

} // namespace cerebelum::actors
