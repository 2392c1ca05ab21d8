// The append path of an execution actor: the only code in actors/ that
// submits appends to an execution's history.
//
// ```
//   start request ------------------> submit_start --+
//   crashes > restart budget -------> fail_after_crashes --+
//   outcome / timer / command ------> process ------------+--> submit -->
//   writer
//                                                                            |
//   on_appended <------------------------------------------------------------+
//     committed: after_commit -- the one after-commit path:
//                  task router <- (tasks, id, upserts/deletes)
//                  callers     <- created / ok
//                  engine      <- (finished, id, state) when terminal
//                  call pool, scheduler <- the decision's calls and timers
//     failed:    on_failed -- retryable: inputs and commands are queued again
//                  (a start or crash-failure append is submitted again);
//                  refused for good (too large, malformed): the execution
//                  fails (fail_refused), the decision is not retried;
//                  conflict: another writer (a bug, or another node) - the
//                  commands in it are answered with an error, the history
//                  is read again
// ```

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/backoff.hpp"
#include "actors/errc.hpp"
#include "actors/execution_actor.hpp"
#include "actors/execution_failure.hpp"
#include "actors/operator_commands.hpp"
#include "eventstore/codec.hpp"

namespace cerebelum::actors {

namespace {

/// Whether `ev` (an input from outside) still applies to the state.
bool accepts(const workflow::execution_state& s, const events::Event& ev) {
  if (s.terminal()) return false;
  if (ev.has_step_completed())
    return s.accepts_result(ev.step_completed().attempt_token());
  if (ev.has_step_failed())
    return s.accepts_result(ev.step_failed().attempt_token());
  if (ev.has_step_suspended())
    return s.accepts_result(ev.step_suspended().attempt_token());
  if (ev.has_timer_fired()) {
    for (auto& t : s.timers())
      if (t.id == ev.timer_fired().timer_id()) return true;
    return false;
  }
  return true;
}

/// Tells the task router that the outcome `ev` of a task attempt was dropped.
void refuse(execution_actor* self, const events::Event& ev) {
  auto& st = self->state;
  const std::string* token = nullptr;
  if (ev.has_step_completed())
    token = &ev.step_completed().attempt_token();
  else if (ev.has_step_failed())
    token = &ev.step_failed().attempt_token();
  else if (ev.has_step_suspended())
    token = &ev.step_suspended().attempt_token();
  if (token == nullptr || st.running.count(*token) > 0) return;
  if (auto router = st.ctx->task_router())
    caf::anon_send(router, refused_atom::value, st.id, *token);
}

/// Tells the task router which task rows a committed append changed.
void publish_tasks(execution_actor* self, task_changes changes) {
  auto& st = self->state;
  if (changes.upserts.empty() && changes.deletes.empty()) return;
  if (auto router = st.ctx->task_router())
    caf::anon_send(router, tasks_atom::value, st.id,
                   std::make_shared<const task_changes>(std::move(changes)));
}

void submit(execution_actor* self, eventstore::append_request req,
            in_flight f) {
  auto& st = self->state;
  st.updated_at_ms = req.index.updated_at_ms;
  f.tasks.upserts = req.task_upserts;
  f.tasks.deletes = req.task_deletes;
  if (f.what != in_flight::kind::decision) f.again = req;
  st.flight = std::make_unique<in_flight>(std::move(f));
  auto me = caf::actor_cast<caf::actor>(self);
  auto status = st.ctx->writer().try_submit(
    std::move(req), [me](eventstore::append_result res) {
      caf::anon_send(me, appended_atom::value,
                     std::make_shared<const append_outcome>(std::move(res)));
    });
  if (status == eventstore::submit_status::accepted) return;
  // Overloaded or closed: treat as a failed append and retry later.
  auto err
    = eventstore::make_error(status == eventstore::submit_status::overloaded
                               ? eventstore::errc::overloaded
                               : eventstore::errc::closed,
                             "writer refused the append", true);
  st.ctx->clock().send_after(
    self, backoff_delay(store_backoff, st.store_retries++, st.id),
    appended_atom::value, std::make_shared<const append_outcome>(err));
}

/// A store error as operators see it.
caf::error answer_for(const std::string& id, const eventstore::error& err) {
  if (err.code == eventstore::errc::conflict)
    return make_error(errc::internal,
                      "execution " + id
                        + " was appended to by another writer (a bug, or "
                          "another node runs it); the command was not "
                          "recorded");
  auto code = err.code == eventstore::errc::payload_too_large
                ? errc::payload_too_large
              : err.retryable        ? errc::unavailable
              : is_store_damage(err) ? errc::store_damaged
                                     : errc::internal;
  return make_error(code, "cannot record the command on " + id + ": "
                            + eventstore::to_string(err));
}

/// The final state of a terminal execution, for the waiters.
final_state_ptr final_of(execution_actor* self) {
  auto& st = self->state;
  if (!st.exec) return nullptr;
  auto fin = std::make_shared<final_state>();
  fin->def = st.def;
  fin->state = st.exec;
  fin->updated_at_ms = st.updated_at_ms;
  return fin;
}

/// Reads the history again and re-issues what it may need (a start that
/// found its id taken).
void adopt_from_store(execution_actor* self) {
  auto& st = self->state;
  auto loaded = load_execution(*st.ctx, st.id);
  if (!loaded)
    throw std::runtime_error("cannot load: "
                             + api_error_message(loaded.error()));
  st.adopt(std::move(*loaded));
  run_commands(self, workflow::resume_commands(st.state()));
}

/// Reads the whole history again (after a failed append). Returns false when
/// the store is away: the actor waits (`reload_due`) and tries again.
bool try_reload(execution_actor* self) {
  auto& st = self->state;
  auto loaded = load_execution(*st.ctx, st.id);
  if (!loaded && api_error_code(loaded.error()) == errc::unavailable) {
    st.reload_due = true;
    wait_for_store(self, api_error_message(loaded.error()));
    return false;
  }
  if (!loaded)
    throw std::runtime_error("cannot reload: "
                             + api_error_message(loaded.error()));
  st.reload_due = false;
  st.adopt(std::move(*loaded));
  store_answered(self);
  return true;
}

/// Continues after an append settled: a terminal execution lets go of its
/// actor; a live one takes its next inputs.
void settle(execution_actor* self) {
  // Commands that came meanwhile are folded (or answered: already
  // terminal); with nothing to append, process switches to the phase.
  process(self);
}

/// The one after-commit path.
///
/// The order matters: the router and the engine hear of the commit before
/// the callers are answered, so that what a caller does next (poll a task,
/// wait for the execution) sees it.
void after_commit(execution_actor* self, in_flight f) {
  auto& st = self->state;
  store_answered(self);
  if (f.migrated) {
    auto from = st.def->version_hash;
    st.adopt(std::move(*f.migrated));
    st.ctx->note_stored(st.def->name, st.def->version_hash);
    spdlog::info("execution {} migrated from version {} to {} by {}", st.id,
                 from, st.def->version_hash, f.commands.back().cmd->by);
  }
  publish_tasks(self, std::move(f.tasks));
  bool terminal = !st.exec || st.state().terminal();
  if (st.exec) {
    auto& m = st.ctx->metrics();
    if (f.what == in_flight::kind::start) m.execution_started(st.def->name);
    if (terminal)
      m.execution_finished(
        st.def->name, workflow::to_string(st.state().status()),
        static_cast<double>(st.ctx->now_ms() - st.state().started_at_ms())
          / 1e3);
  }
  if (f.what == in_flight::kind::crash_failure)
    spdlog::error("execution {} marked failed after crashes", st.id);
  if (f.what == in_flight::kind::row_cancel)
    spdlog::info("execution {} cancelled (its workflow definition is "
                 "missing)",
                 st.id);
  if (terminal) {
    if (auto fin = final_of(self))
      caf::anon_send(st.ctx->registry(), finished_atom::value, st.id, fin);
    else
      caf::anon_send(st.ctx->registry(), finished_atom::value, st.id);
  } else if (f.resumed) {
    caf::anon_send(st.ctx->registry(), resumed_atom::value, st.id);
  }
  for (std::size_t i = 0; i < f.starts.size(); ++i)
    f.starts[i].deliver(i == 0);
  for (auto& c : f.commands)
    c.rp.deliver(ok_atom::value);
  run_commands(self, f.decisions);
  if (!st.exec) {
    // Failed from its index row: nothing to hold.
    self->quit();
    return;
  }
  settle(self);
}

/// Text for a caller whose command or start met a store outage.
std::string outage_note(const eventstore::error& err) {
  return std::string{"the store is unavailable ("} + eventstore::to_string(err)
         + (err.possibly_committed
              ? "); it may have been recorded: retry, the same request is "
                "answered from the history"
              : "); nothing was recorded: retry later");
}

/// Whether the store refused `err`'s append for what it holds (too large,
/// malformed): the same append can never succeed.
bool refused_for_good(const eventstore::error& err) {
  return !err.retryable
         && (err.code == eventstore::errc::payload_too_large
             || err.code == eventstore::errc::invalid_argument);
}

/// Fails the execution after the store refused decision `f` for good, instead
/// of deciding the same thing again: the commands in it are answered with
/// the error, its inputs dropped, and execution_failed (kind
/// payload_too_large or append_refused, naming the store's error) is
/// appended on the history as committed.
void fail_refused(execution_actor* self, in_flight f,
                  const eventstore::error& err) {
  auto& st = self->state;
  for (auto& c : f.commands)
    c.rp.deliver(answer_for(st.id, err));
  if (!try_reload(self)) return;
  if (st.state().terminal()) {
    settle(self);
    return;
  }
  auto kind = err.code == eventstore::errc::payload_too_large
                ? "payload_too_large"
                : "append_refused";
  auto message = "the store refused what the execution decided next: "
                 + eventstore::to_string(err);
  spdlog::error("execution {} fails: {}", st.id, message);
  in_flight fail;
  fail.what = in_flight::kind::refusal_failure;
  auto req = engine_failure(*st.ctx, st.state(), kind, message);
  st.phase = exec_phase::terminal;
  submit(self, std::move(req), std::move(fail));
}

void on_failed(execution_actor* self, in_flight f,
               const eventstore::error& err) {
  auto& st = self->state;
  bool conflict = err.code == eventstore::errc::conflict;
  // Retryable: an outage (waited out, reported by the store's health) or
  // back-pressure; neither is logged per retry.
  bool outage = !conflict && is_outage(err);
  bool retryable = !conflict && err.retryable;
  using k = in_flight::kind;
  if (f.what == k::decision && refused_for_good(err)) {
    fail_refused(self, std::move(f), err);
    return;
  }
  if (conflict && f.what != k::start)
    spdlog::error("execution {}: another writer appended to its history (a "
                  "bug, or another node runs it): {}; reading it again",
                  st.id, eventstore::to_string(err));
  else if (!retryable)
    spdlog::warn("execution {}: append failed ({})", st.id,
                 eventstore::to_string(err));
  if (outage) st.ctx->health().failed(err);
  if (f.what == k::start && outage) {
    // The callers hear it now (503 and a retry hint) instead of hanging on
    // the outage; a start that may have committed is retried until the
    // store answers (a conflict then adopts the history).
    auto answer = make_error(errc::unavailable,
                             "cannot start " + st.id + ": " + outage_note(err));
    for (auto& rp : f.starts)
      rp.deliver(answer);
    f.starts.clear();
    if (!err.possibly_committed) {
      store_answered(self);
      st.exec.reset();
      self->quit();
      return;
    }
  }
  if (f.what != k::decision && retryable) {
    st.flight = std::make_unique<in_flight>(std::move(f));
    if (outage)
      wait_for_store(self, eventstore::to_string(err));
    else
      st.ctx->clock().send_after(
        self, backoff_delay(store_backoff, st.store_retries++, st.id),
        again_atom::value);
    return;
  }
  if (f.what == k::start) {
    if (!conflict) {
      // Nothing was written: the callers learn why and the actor stops.
      auto answer = make_error(errc::internal, "cannot start " + st.id + ": "
                                                 + eventstore::to_string(err));
      if (err.code == eventstore::errc::payload_too_large)
        answer = make_error(errc::payload_too_large,
                            "cannot start " + st.id + ": "
                              + eventstore::to_string(err));
      for (auto& rp : f.starts)
        rp.deliver(answer);
      st.exec.reset();
      self->quit();
      return;
    }
    // The id exists (another start got it first, and its actor is gone).
    for (auto& rp : f.starts)
      rp.deliver(false);
    adopt_from_store(self);
    settle(self);
    return;
  }
  if (f.what == k::refusal_failure) {
    spdlog::error("cannot mark execution {} failed: {}", st.id,
                  eventstore::to_string(err));
    self->quit();
    return;
  }
  if (f.what == k::row_cancel) {
    for (auto& c : f.commands)
      c.rp.deliver(answer_for(st.id, err));
    self->quit();
    return;
  }
  if (f.what == k::migration) {
    // Nothing was adopted; the operator hears why (and may run the
    // migration again). The history is read again in case it committed.
    for (auto& c : f.commands)
      c.rp.deliver(
        outage ? make_error(errc::unavailable,
                            "cannot migrate " + st.id + ": " + outage_note(err))
               : answer_for(st.id, err));
    if (!try_reload(self)) return;
    settle(self);
    return;
  }
  if (f.what == k::crash_failure) {
    if (conflict) {
      fail_after_crashes(self, st.crashes, st.crash_reason);
      return;
    }
    spdlog::error("cannot mark execution {} failed: {}", st.id,
                  eventstore::to_string(err));
    self->quit();
    return;
  }
  // Inputs wait for the next append; operators' commands are answered now
  // in an outage (503: they retry), queued again under back-pressure.
  for (auto i = f.inputs.rbegin(); i != f.inputs.rend(); ++i)
    st.inbox.push_front(std::move(*i));
  for (auto i = f.commands.rbegin(); i != f.commands.rend(); ++i) {
    if (retryable && !outage)
      st.commands.push_front(std::move(*i));
    else if (outage)
      i->rp.deliver(
        make_error(errc::unavailable, "cannot record the command on " + st.id
                                        + ": " + outage_note(err)));
    else
      i->rp.deliver(answer_for(st.id, err));
  }
  if (!try_reload(self)) return;
  if (phase_of(st.state()) == exec_phase::terminal)
    caf::anon_send(st.ctx->registry(), finished_atom::value, st.id);
  settle(self);
}

} // namespace

namespace {

/// Submits the migration `c` of the execution, nothing else folded yet
/// (see migration_of). Returns false when `c` was answered without an
/// append (an error, or the execution runs that version already).
bool submit_migration(execution_actor* self, queued_command& c, in_flight& f,
                      std::int64_t now) {
  auto& st = self->state;
  auto history = eventstore::history_of(st.ctx->store(), st.id);
  if (!history) {
    if (is_outage(history.err())) st.ctx->health().failed(history.err());
    c.rp.deliver(answer_for(st.id, history.err()));
    return false;
  }
  auto m = migration_of(st.state(), *c.cmd, *history, now);
  if (!m || !*m) {
    if (m)
      c.rp.deliver(ok_atom::value);
    else
      c.rp.deliver(std::move(m.error()));
    return false;
  }
  auto req = make_append(*(*m)->state, st.state().next_seq(), {(*m)->event},
                         capture_rows(st.state()), {}, now);
  if (auto row = st.ctx->row_to_store((*m)->state->def(), now))
    req.definition_inserts.push_back(std::move(*row));
  f.what = in_flight::kind::migration;
  f.migrated = std::make_shared<loaded_execution>(
    loaded_execution{c.cmd->to, std::move((*m)->state)});
  f.commands.push_back(std::move(c));
  submit(self, std::move(req), std::move(f));
  f = in_flight{};
  return true;
}

/// The body of `process`; `f` collects what the append carries.
void fold_and_submit(execution_actor* self, in_flight& f) {
  auto& st = self->state;
  auto& s = st.state();
  auto first_seq = s.next_seq();
  auto before = capture_rows(s);
  std::vector<events::Event> evs;
  auto now = st.ctx->now_ms();
  std::vector<std::int64_t> dead_letters;
  while (!st.commands.empty()) {
    if (st.commands.front().cmd->what == operator_command::kind::migrate) {
      // A migration changes the definition the rest is decided on: it is
      // appended alone, after what this append folded so far.
      if (!evs.empty()) break;
      auto c = std::move(st.commands.front());
      st.commands.pop_front();
      if (submit_migration(self, c, f, now)) return;
      continue;
    }
    auto c = std::move(st.commands.front());
    st.commands.pop_front();
    auto ev = command_event(s, *c.cmd, now);
    if (!ev) {
      c.rp.deliver(std::move(ev.error()));
      continue;
    }
    if (ev->payload_case() != events::Event::PAYLOAD_NOT_SET) {
      if (auto ok = s.apply(*ev); !ok)
        throw std::runtime_error("command refused by the state: "
                                 + ok.error().to_string());
      if (ev->has_execution_resumed()) {
        dead_letters.push_back(c.cmd->dead_letter_id);
        f.resumed = true;
      }
      evs.push_back(std::move(*ev));
    }
    f.commands.push_back(std::move(c));
  }
  while (!st.inbox.empty()) {
    auto ev = std::move(st.inbox.front());
    st.inbox.pop_front();
    if (!accepts(s, ev)) {
      refuse(self, ev);
      continue;
    }
    ev.set_seq(s.next_seq());
    ev.set_recorded_at_ms(now);
    if (!s.apply(ev)) throw std::runtime_error("input refused by the state");
    f.inputs.push_back(ev);
    evs.push_back(std::move(ev));
  }
  if (!s.terminal()) {
    if (auto& hook = st.ctx->options().before_decide) hook(st.id);
    auto dec = workflow::decide(s, now, st.ctx->options().reoffers);
    if (!dec)
      throw std::runtime_error("cannot decide: " + dec.error().to_string());
    for (auto& ev : dec->events)
      evs.push_back(ev);
    f.decisions = std::move(dec->commands);
  }
  if (evs.empty()) {
    // Nothing to record: what needed no event is answered now.
    for (auto& c : f.commands)
      c.rp.deliver(ok_atom::value);
    transition(self, phase_of(s));
    return;
  }
  auto req = make_append(s, first_seq, evs, before, f.decisions, now);
  req.dead_letter_deletes = std::move(dead_letters);
  submit(self, std::move(req), std::move(f));
  f = in_flight{};
}

} // namespace

void process(execution_actor* self) {
  auto& st = self->state;
  if (st.appending() || st.reload_due || st.unsent_start || !st.exec) return;
  in_flight f;
  try {
    fold_and_submit(self, f);
  } catch (...) {
    // The actor crashes (a bug, or the test hook): the commands folded so
    // far are answered before it goes; its restart folds the history.
    for (auto& c : f.commands)
      c.rp.deliver(make_error(errc::unavailable,
                              "the actor of execution " + st.id
                                + " crashed before recording the command; "
                                  "try again"));
    throw;
  }
}

void submit_start(execution_actor* self, caf::response_promise rp) {
  auto& st = self->state;
  if (!st.unsent_start) {
    // The id exists: answered after the commit in flight, if any.
    if (st.appending() && st.flight->what == in_flight::kind::start)
      st.flight->starts.push_back(std::move(rp));
    else
      rp.deliver(false);
    return;
  }
  auto start = std::move(*st.unsent_start);
  st.unsent_start.reset();
  in_flight f;
  f.what = in_flight::kind::start;
  f.decisions = std::move(start.commands);
  f.starts.push_back(std::move(rp));
  submit(self, std::move(start.append), std::move(f));
}

void fail_after_crashes(execution_actor* self, int crashes,
                        const std::string& reason) {
  auto& st = self->state;
  auto message = crash_message(crashes, reason);
  in_flight f;
  f.what = in_flight::kind::crash_failure;
  auto loaded = load_execution(*st.ctx, st.id);
  if (!loaded && api_error_code(loaded.error()) == errc::unavailable) {
    st.fail_due = true;
    wait_for_store(self, api_error_message(loaded.error()));
    return;
  }
  st.fail_due = false;
  if (loaded) {
    store_answered(self);
    st.adopt(std::move(*loaded));
    if (st.state().terminal()) {
      // Failed meanwhile (another node?): let go of the actor.
      self->send(self, tick_atom::value);
      return;
    }
    auto req = crash_failure(*st.ctx, st.state(), message);
    st.phase = exec_phase::terminal;
    submit(self, std::move(req), std::move(f));
    return;
  }
  // Its history cannot be folded: the index row says enough.
  st.exec.reset();
  auto req = crash_failure_from_row(*st.ctx, st.id, message);
  if (!req || !*req) {
    if (!req)
      spdlog::error("cannot mark execution {} failed: {}", st.id,
                    eventstore::to_string(req.err()));
    self->quit();
    return;
  }
  submit(self, std::move(**req), std::move(f));
}

void cancel_unloadable(execution_actor* self, queued_command c) {
  auto& st = self->state;
  st.exec.reset();
  auto req = cancel_from_row(*st.ctx, st.id, {c.cmd->by, c.cmd->note},
                             c.cmd->reason);
  if (!req) {
    c.rp.deliver(answer_for(st.id, req.err()));
    self->quit();
    return;
  }
  if (!*req) {
    c.rp.deliver(make_error(errc::already_terminal,
                            "execution " + st.id + " is already terminal"));
    self->quit();
    return;
  }
  in_flight f;
  f.what = in_flight::kind::row_cancel;
  f.commands.push_back(std::move(c));
  submit(self, std::move(**req), std::move(f));
}

void on_appended(execution_actor* self, const append_outcome_ptr& out) {
  auto& st = self->state;
  if (!st.flight) return;
  auto f = std::move(*st.flight);
  st.flight.reset();
  if (out->res.ok())
    after_commit(self, std::move(f));
  else
    on_failed(self, std::move(f), out->res.err());
}

void resubmit(execution_actor* self) {
  auto& st = self->state;
  if (st.fail_due) {
    fail_after_crashes(self, st.crashes, st.crash_reason);
    return;
  }
  if (st.reload_due) {
    if (!try_reload(self)) return;
    if (phase_of(st.state()) == exec_phase::terminal)
      caf::anon_send(st.ctx->registry(), finished_atom::value, st.id);
    settle(self);
    return;
  }
  if (!st.flight || !st.flight->again) return;
  auto f = std::move(*st.flight);
  st.flight.reset();
  auto req = *f.again;
  submit(self, std::move(req), std::move(f));
}

void wait_for_store(execution_actor* self, const std::string& what) {
  auto& st = self->state;
  st.ctx->health().unavailable(what);
  if (!*st.store_waiting) {
    *st.store_waiting = true;
    st.ctx->health().wait_begin();
  }
  st.ctx->clock().send_after(
    self, backoff_delay(store_backoff, st.store_retries++, st.id),
    again_atom::value);
}

void store_answered(execution_actor* self) {
  auto& st = self->state;
  st.store_retries = 0;
  st.ctx->health().succeeded();
  if (*st.store_waiting) {
    *st.store_waiting = false;
    st.ctx->health().wait_end();
  }
}

void abandon_requests(execution_actor* self, const caf::error& err) {
  auto& st = self->state;
  if (st.flight) {
    for (auto& rp : st.flight->starts)
      rp.deliver(err);
    for (auto& c : st.flight->commands)
      c.rp.deliver(err);
    st.flight.reset();
  }
  for (auto& c : st.commands)
    c.rp.deliver(err);
  st.commands.clear();
}

} // namespace cerebelum::actors
