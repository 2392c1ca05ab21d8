#include "actors/operator_commands.hpp"

#include "actors/errc.hpp"
#include "actors/history.hpp"

namespace cerebelum::actors {

namespace {

/// Builds the event of `cmd` for `s`, or an error when it does not apply.
/// Returns an event without payload when there is nothing to record.
caf::expected<events::Event> event_for(const workflow::execution_state& s,
                                       const operator_command& cmd,
                                       std::int64_t now) {
  events::Event ev;
  ev.set_seq(s.next_seq());
  ev.set_recorded_at_ms(now);
  auto status = std::string{workflow::to_string(s.status())};
  using k = operator_command::kind;
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

} // namespace

caf::error append_command(engine_context& ctx, const std::string& id,
                          const operator_command& cmd) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto loaded = load_execution(ctx, id);
    if (!loaded) return std::move(loaded.error());
    auto& s = *loaded->state;
    auto ev = event_for(s, cmd, now_ms());
    if (!ev) return std::move(ev.error());
    if (ev->payload_case() == events::Event::PAYLOAD_NOT_SET) return caf::none;
    auto seq = s.next_seq();
    auto before = capture_rows(s);
    if (auto ok = s.apply(*ev); !ok)
      return make_error(errc::internal, "cannot record the command on " + id
                                          + ": " + ok.error().to_string());
    auto res
      = ctx.writer().append_and_wait(make_append(s, seq, {*ev}, before, {}));
    if (res) return caf::none;
    if (res.err().code == eventstore::errc::conflict) continue;
    return make_error(errc::unavailable, "cannot record the command on " + id
                                           + ": "
                                           + eventstore::to_string(res.err()));
  }
  return make_error(errc::unavailable,
                    "execution " + id + " keeps changing; try again");
}

} // namespace cerebelum::actors
