#include "actors/operator_commands.hpp"

#include "actors/errc.hpp"
#include "workflow/upgrade_check.hpp"

namespace cerebelum::actors {

namespace {

caf::expected<events::Event> resume_event(const workflow::execution_state& s,
                                          const operator_command& cmd,
                                          events::Event ev, std::int64_t now) {
  auto info = s.dead_letter();
  if (s.status() != workflow::execution_status::failed || !info
      || info->attempt_token != cmd.dead_letter_task)
    return make_error(errc::not_retryable,
                      "execution " + s.execution_id() + " is "
                        + std::string{workflow::to_string(s.status())}
                        + ", not failed by the task of dead letter "
                        + std::to_string(cmd.dead_letter_id));
  auto* r = ev.mutable_execution_resumed();
  r->set_by(cmd.by);
  r->set_by_note(cmd.note);
  r->set_step(info->step);
  r->set_map_index(info->map_index);
  r->set_dead_letter_id(cmd.dead_letter_id);
  r->set_resumed_at_ms(now);
  return ev;
}

} // namespace

caf::expected<events::Event> command_event(const workflow::execution_state& s,
                                           const operator_command& cmd,
                                           std::int64_t now) {
  events::Event ev;
  ev.set_seq(s.next_seq());
  ev.set_recorded_at_ms(now);
  auto status = std::string{workflow::to_string(s.status())};
  using k = operator_command::kind;
  if (cmd.what == k::retry_dead_letter)
    return resume_event(s, cmd, std::move(ev), now);
  if (cmd.what == k::cancel) {
    if (s.terminal())
      return make_error(errc::already_terminal, "execution " + s.execution_id()
                                                  + " is already " + status);
    if (s.cancel_pending()) return ev; // asked before; nothing to add
    auto* c = ev.mutable_cancel_requested();
    c->set_by(cmd.by);
    c->set_by_note(cmd.note);
    c->set_reason(cmd.reason);
    c->set_requested_at_ms(now);
    return ev;
  }
  if (!s.approval() || s.terminal() || s.cancel_pending())
    return make_error(errc::not_awaiting_approval,
                      "execution " + s.execution_id() + " is " + status
                        + ", not awaiting approval");
  if (cmd.what == k::approve) {
    auto* a = ev.mutable_approval_granted();
    a->set_step(s.approval()->step);
    a->set_by(cmd.by);
    a->set_by_note(cmd.note);
    a->set_data_json(workflow::json_text(cmd.data));
    a->set_decided_at_ms(now);
  } else {
    auto* r = ev.mutable_approval_rejected();
    r->set_step(s.approval()->step);
    r->set_by(cmd.by);
    r->set_by_note(cmd.note);
    r->set_reason(cmd.reason);
    r->set_decided_at_ms(now);
  }
  return ev;
}

caf::expected<std::optional<migration>>
migration_of(const workflow::execution_state& s, const operator_command& cmd,
             const std::vector<events::Event>& history, std::int64_t now) {
  const auto& id = s.execution_id();
  if (s.terminal())
    return make_error(errc::already_terminal,
                      "execution " + id + " is already "
                        + std::string{workflow::to_string(s.status())});
  const auto& to = cmd.to;
  if (!to) return make_error(errc::internal, "migration without a definition");
  if (to->name != s.def().name)
    return make_error(errc::invalid_argument,
                      "execution " + id + " runs workflow " + s.def().name
                        + ", not " + to->name);
  if (to->version_hash == s.def().version_hash) return std::nullopt;
  if (auto d = workflow::check_upgrade(*to, id, history))
    return make_error(errc::incompatible,
                      "seq " + std::to_string(d->seq) + " " + d->event_type
                        + (d->step.empty() ? std::string{}
                                           : " '" + d->step + "'")
                        + ": " + d->reason);
  migration m;
  m.event.set_seq(s.next_seq());
  m.event.set_recorded_at_ms(now);
  auto* e = m.event.mutable_execution_migrated();
  e->set_from_version(s.def().version_hash);
  e->set_to_version(to->version_hash);
  e->set_by(cmd.by);
  e->set_by_note(cmd.note);
  e->set_migrated_at_ms(now);
  m.state = std::make_unique<workflow::execution_state>(*to, id);
  auto chain = s.versions();
  chain.push_back(to->version_hash);
  m.state->expect_versions(std::move(chain));
  auto fold = [&](const events::Event& ev) -> caf::error {
    if (auto ok = m.state->apply(ev); !ok)
      return make_error(errc::internal, "the history of " + id
                                          + " does not fold on version "
                                          + std::to_string(to->version_hash)
                                          + ": " + ok.error().to_string());
    return {};
  };
  for (const auto& ev : history)
    if (auto err = fold(ev)) return err;
  if (auto err = fold(m.event)) return err;
  return std::optional<migration>{std::move(m)};
}

} // namespace cerebelum::actors
