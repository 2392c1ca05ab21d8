#include "actors/operator_commands.hpp"

#include "actors/errc.hpp"

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
    a->set_data_json(workflow::json_text(cmd.data));
    a->set_decided_at_ms(now);
  } else {
    auto* r = ev.mutable_approval_rejected();
    r->set_step(s.approval()->step);
    r->set_by(cmd.by);
    r->set_reason(cmd.reason);
    r->set_decided_at_ms(now);
  }
  return ev;
}

} // namespace cerebelum::actors
