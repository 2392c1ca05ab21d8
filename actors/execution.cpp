// The actor of one running execution.
//
// ```
//                       spawn (fold history, re-issue resume_commands)
//                         |
//                         v
//   +------------> executing <----------------------------+
//   |               |  |   |                              |
//   |        sleep  |  |   | approval                     | timer / approval /
//   |               v  |   v                              | result / wake
//   |        sleeping  |  awaiting_approval --------------+
//   |           |      |        |
//   |  nothing in flight: ask the engine to passivate --> quit (normal)
//   |                  |
//   |                  v finish committed
//   +------------- terminal --> quit (normal)
// ```
//
// Every state runs the same loop: inputs (step outcomes, timer firings, new
// history appended by operators) are folded into the state together with the
// decider's events in ONE append; the decision's commands run only after the
// store acknowledged it. One append is in flight at a time; a conflict means
// someone else appended: the actor reloads its history and decides again.

#include "actors/execution.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <set>

#include "actors/errc.hpp"
#include "actors/execution_failure.hpp"
#include "actors/history.hpp"
#include "actors/messages.hpp"
#include "actors/step_runner.hpp"

namespace cerebelum::actors {

namespace {

enum class exec_phase { executing, sleeping, awaiting_approval, terminal };

const char* to_string(exec_phase x) {
  switch (x) {
    case exec_phase::executing: return "executing";
    case exec_phase::sleeping: return "sleeping";
    case exec_phase::awaiting_approval: return "awaiting_approval";
    default: return "terminal";
  }
}

struct execution_data {
  context_ptr ctx;
  std::string id;
  engine_context::definition_ptr def;
  /// Shared with waiters once terminal (sent with `finished_atom`).
  std::shared_ptr<workflow::execution_state> exec;
  /// The index row's update time of the last append.
  std::int64_t updated_at_ms = 0;
  exec_phase phase = exec_phase::executing;
  /// Inputs not yet appended.
  std::deque<events::Event> inbox;
  /// Inputs of the append in flight (re-queued on conflict).
  std::vector<events::Event> in_flight_inputs;
  std::vector<workflow::command> pending_commands;
  /// Task rows written/deleted by the append in flight (for the router).
  task_changes pending_tasks;
  bool appending = false;
  bool need_catch_up = false;
  /// Native attempts running on the call pool, by token.
  std::set<std::string> running;
  /// Messages received from the engine (passivation handshake).
  std::uint32_t wakes_seen = 0;
  bool passivation_asked = false;
  std::uint64_t passivation_generation = 0;
  /// Set when the actor must mark the execution failed after crashes.
  std::string crash_reason;

  workflow::execution_state& state() {
    return *exec;
  }

  void adopt(loaded_execution x) {
    def = std::move(x.def);
    exec = std::move(x.state);
  }
};

using execution_actor = caf::stateful_actor<execution_data>;

caf::behavior executing(execution_actor* self);
caf::behavior sleeping(execution_actor* self);
caf::behavior awaiting_approval(execution_actor* self);
caf::behavior terminal(execution_actor* self);
void process(execution_actor* self);

/// The one transition function: records the transition, switches the
/// behavior and, for passive states, considers passivation.
void transition(execution_actor* self, exec_phase next) {
  auto& st = self->state;
  if (st.phase != next)
    spdlog::trace("execution {}: {} -> {}", st.id, to_string(st.phase),
                  to_string(next));
  st.phase = next;
  switch (next) {
    case exec_phase::executing: self->become(executing(self)); break;
    case exec_phase::sleeping: self->become(sleeping(self)); break;
    case exec_phase::awaiting_approval:
      self->become(awaiting_approval(self));
      break;
    case exec_phase::terminal:
      self->become(terminal(self));
      self->quit();
      return;
  }
  if (next == exec_phase::executing) return;
  auto delay = st.ctx->options().passivation_delay;
  auto gen = ++st.passivation_generation;
  if (delay.count() == 0)
    caf::anon_send(caf::actor_cast<caf::actor>(self), passivate_atom::value,
                   gen);
  else
    self->delayed_send(self, delay, passivate_atom::value, gen);
}

exec_phase phase_of(const workflow::execution_state& s) {
  switch (s.status()) {
    case workflow::execution_status::sleeping: return exec_phase::sleeping;
    case workflow::execution_status::awaiting_approval:
      return exec_phase::awaiting_approval;
    case workflow::execution_status::running: return exec_phase::executing;
    default: return exec_phase::terminal;
  }
}

void run_commands(execution_actor* self,
                  const std::vector<workflow::command>& cmds) {
  auto& st = self->state;
  for (auto& cmd : cmds) {
    if (auto* run = std::get_if<workflow::run_step_command>(&cmd)) {
      if (run->kind != workflow::step_kind::call) continue; // tasks: durable
      if (!st.running.insert(run->token).second) continue;
      dispatch_call(*st.ctx, caf::actor_cast<caf::actor>(self), *run);
    } else if (auto* timer = std::get_if<workflow::start_timer_command>(&cmd)) {
      caf::anon_send(st.ctx->scheduler(), schedule_atom::value, st.id,
                     timer->timer_id, timer->fire_at_ms);
    } else if (std::holds_alternative<workflow::finish_command>(cmd)) {
      st.ctx->forget_crashes(st.id);
      auto fin = std::make_shared<final_state>();
      fin->def = st.def;
      fin->state = st.exec;
      fin->updated_at_ms = st.updated_at_ms;
      caf::anon_send(st.ctx->engine(), finished_atom::value, st.id,
                     final_state_ptr{std::move(fin)});
    }
  }
}

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

/// Tells the task router which task rows the acknowledged append changed.
void publish_tasks(execution_actor* self) {
  auto& st = self->state;
  auto changes = std::move(st.pending_tasks);
  st.pending_tasks = {};
  if (changes.upserts.empty() && changes.deletes.empty()) return;
  if (auto router = st.ctx->task_router())
    caf::anon_send(router, tasks_atom::value, st.id,
                   std::make_shared<const task_changes>(std::move(changes)));
}

void submit(execution_actor* self, eventstore::append_request req) {
  auto& st = self->state;
  st.appending = true;
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
  self->delayed_send(self, std::chrono::milliseconds{20}, appended_atom::value,
                     std::make_shared<const append_outcome>(err));
}

/// Folds queued inputs, decides and appends; runs commands on the ack.
void process(execution_actor* self) {
  auto& st = self->state;
  if (st.appending || st.phase == exec_phase::terminal) return;
  auto& s = st.state();
  auto first_seq = s.next_seq();
  auto before = capture_rows(s);
  std::vector<events::Event> evs;
  std::vector<events::Event> inputs;
  auto now = now_ms();
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
    inputs.push_back(ev);
    evs.push_back(std::move(ev));
  }
  if (auto& hook = st.ctx->options().before_decide) hook(st.id);
  auto dec = workflow::decide(s, now);
  if (!dec)
    throw std::runtime_error("cannot decide: " + dec.error().to_string());
  for (auto& ev : dec->events)
    evs.push_back(ev);
  if (evs.empty()) {
    transition(self, phase_of(s));
    return;
  }
  st.in_flight_inputs = std::move(inputs);
  st.pending_commands = std::move(dec->commands);
  auto req = make_append(s, first_seq, evs, before, st.pending_commands);
  st.updated_at_ms = req.index.updated_at_ms;
  st.pending_tasks.upserts = req.task_upserts;
  st.pending_tasks.deletes = req.task_deletes;
  submit(self, std::move(req));
}

/// Reloads the whole history (after a conflict or a failed append).
void reload(execution_actor* self) {
  auto& st = self->state;
  auto loaded = load_execution(*st.ctx, st.id);
  if (!loaded)
    throw std::runtime_error("cannot reload: "
                             + api_error_message(loaded.error()));
  st.adopt(std::move(*loaded));
}

void on_appended(execution_actor* self, const append_outcome_ptr& out) {
  auto& st = self->state;
  st.appending = false;
  if (out->res.ok()) {
    auto cmds = std::move(st.pending_commands);
    st.pending_commands.clear();
    st.in_flight_inputs.clear();
    publish_tasks(self);
    if (st.need_catch_up) {
      st.need_catch_up = false;
      if (auto err = catch_up(*st.ctx, st.state()))
        throw std::runtime_error("cannot catch up: " + api_error_message(err));
    }
    run_commands(self, cmds);
  } else {
    auto& err = out->res.err();
    if (err.code != eventstore::errc::conflict)
      spdlog::warn("execution {}: append failed ({}), retrying", st.id,
                   eventstore::to_string(err));
    for (auto i = st.in_flight_inputs.rbegin(); i != st.in_flight_inputs.rend();
         ++i)
      st.inbox.push_front(std::move(*i));
    st.in_flight_inputs.clear();
    st.pending_commands.clear();
    st.pending_tasks = {};
    st.need_catch_up = false;
    reload(self);
  }
  auto next = phase_of(st.state());
  if (next == exec_phase::terminal && !out->res.ok()) {
    // Someone else finished it; tell the waiters anyway.
    caf::anon_send(st.ctx->engine(), finished_atom::value, st.id);
  }
  if (next == exec_phase::terminal) {
    transition(self, next);
    return;
  }
  st.phase = next;
  process(self);
}

/// Handlers every live state shares.
caf::message_handler common(execution_actor* self) {
  return {
    [=](appended_atom, const append_outcome_ptr& out) {
      on_appended(self, out);
    },
    [=](outcome_atom, const std::string& token, const event_ptr& ev) {
      self->state.running.erase(token);
      self->state.inbox.push_back(*ev);
      process(self);
    },
    [=](wake_atom) {
      auto& st = self->state;
      ++st.wakes_seen;
      st.passivation_asked = false;
      if (st.appending) {
        st.need_catch_up = true;
        return;
      }
      if (auto err = catch_up(*st.ctx, st.state()))
        throw std::runtime_error("cannot catch up: " + api_error_message(err));
      process(self);
    },
    [=](timer_atom, const std::string& timer_id) {
      auto& st = self->state;
      ++st.wakes_seen;
      st.passivation_asked = false;
      events::Event ev;
      ev.mutable_timer_fired()->set_timer_id(timer_id);
      ev.mutable_timer_fired()->set_fired_at_ms(now_ms());
      st.inbox.push_back(std::move(ev));
      process(self);
    },
    [=](tick_atom) {
      process(self);
    },
    [=](hello_atom, const caf::actor& engine) {
      // A restarted engine lost its map: register again and start the
      // passivation handshake's count afresh (the new engine counts from
      // this hello on).
      auto& st = self->state;
      st.wakes_seen = 0;
      st.passivation_asked = false;
      self->send(engine, hello_atom::value, st.id,
                 caf::actor_cast<caf::actor>(self));
      if (st.phase != exec_phase::executing) transition(self, st.phase);
    },
    [=](passivate_atom, std::uint64_t) {
      // Stale: the execution is executing again.
    },
    [=](passok_atom) {
      // Only reachable in a passive state (see below).
    },
  };
}

/// Handlers of the passive states (sleeping, awaiting approval).
caf::message_handler passive(execution_actor* self) {
  return {
    [=](passivate_atom, std::uint64_t gen) {
      auto& st = self->state;
      if (gen != st.passivation_generation || st.appending
          || !st.running.empty() || !st.inbox.empty() || st.passivation_asked)
        return;
      // A timer due soon: stay resident (the scheduler prewarmed us).
      auto wake = st.state().next_wake_ms();
      if (wake && *wake - now_ms() <= st.ctx->options().timer_prewarm.count())
        return;
      st.passivation_asked = true;
      caf::anon_send(st.ctx->engine(), passivate_atom::value, st.id,
                     st.wakes_seen, caf::actor_cast<caf::actor>(self));
    },
    [=](passok_atom) {
      auto& st = self->state;
      if (st.passivation_asked && !st.appending && st.running.empty())
        self->quit();
    },
  };
}

caf::behavior executing(execution_actor* self) {
  return common(self);
}

caf::behavior sleeping(execution_actor* self) {
  return passive(self).or_else(common(self));
}

caf::behavior awaiting_approval(execution_actor* self) {
  return passive(self).or_else(common(self));
}

caf::behavior terminal(execution_actor*) {
  return {[](wake_atom) {}, [](hello_atom, const caf::actor&) {}};
}

/// Spawn: fold the history, re-issue what may not have been carried out,
/// then decide.
caf::behavior init(execution_actor* self, context_ptr ctx, std::string id) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.id = std::move(id);
  self->set_exception_handler([self](std::exception_ptr& eptr) -> caf::error {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    auto& st = self->state;
    auto n = st.ctx->note_crash(st.id, what);
    spdlog::error("execution {}: actor crashed ({} so far): {}", st.id, n,
                  what);
    return make_error(errc::internal, "execution actor crashed: " + what);
  });
  caf::anon_send(st.ctx->engine(), hello_atom::value, st.id,
                 caf::actor_cast<caf::actor>(self));
  auto [crashes, reason] = st.ctx->crashes(st.id);
  if (crashes > st.ctx->options().restart_budget) {
    fail_after_crashes(*st.ctx, st.id, crashes, reason);
    self->quit();
    return terminal(self);
  }
  // A fresh start hands its committed first decision over; anything else
  // (a restart, a respawn after passivation) folds the history.
  std::vector<workflow::command> first;
  if (auto started = st.ctx->take_over(st.id)) {
    st.def = std::move(started->def);
    st.exec = std::move(started->state);
    first = std::move(started->commands);
  } else {
    missing_workflow missing;
    auto loaded = load_execution(*st.ctx, st.id, &missing);
    while (!loaded
           && api_error_code(loaded.error()) == errc::unknown_workflow) {
      // Its definition is not known (yet): typically registered by a remote
      // worker that has not registered again since a node restart. Park:
      // quit normally, append nothing, count no crash; registering the
      // definition wakes it (engine_context::add_definition).
      using pr = engine_context::park_result;
      auto parked = st.ctx->park(st.id, missing.name, missing.version);
      if (parked == pr::now_known) {
        loaded = load_execution(*st.ctx, st.id, &missing);
        continue;
      }
      if (parked == pr::parked_first)
        spdlog::warn("execution {} waits for workflow {} (version {}) to be "
                     "registered",
                     st.id, missing.name, missing.version);
      self->quit();
      return terminal(self);
    }
    if (!loaded && api_error_code(loaded.error()) == errc::store_damaged) {
      // Replaying or failing it would build on events the store cannot give
      // back: set it aside as stored (a restored backup brings it back), with
      // no crash counted and nothing appended. Reported once per node run.
      if (st.ctx->note_damaged(st.id))
        spdlog::error("execution {} is set aside (not resumed, not marked "
                      "failed): {}; restore the store from a backup to "
                      "resume it",
                      st.id, api_error_message(loaded.error()));
      self->quit();
      return terminal(self);
    }
    if (!loaded) {
      auto what = "cannot load: " + api_error_message(loaded.error());
      st.ctx->note_crash(st.id, what);
      self->quit(make_error(errc::internal, std::move(what)));
      return terminal(self);
    }
    st.adopt(std::move(*loaded));
    first = workflow::resume_commands(st.state());
    if (st.ctx->take_unparked(st.id)) {
      // Timers that came due while parked were fired to a parked actor (and
      // lost); the scheduler will not fire those keys again for a while.
      auto now = now_ms();
      for (auto& t : st.state().timers())
        if (t.fire_at_ms <= now) self->send(self, timer_atom::value, t.id);
    }
  }
  if (st.state().terminal()) {
    self->quit();
    return terminal(self);
  }
  run_commands(self, first);
  st.phase = phase_of(st.state());
  self->send(self, tick_atom::value);
  return executing(self);
}

} // namespace

caf::actor spawn_execution(caf::actor_system& sys, context_ptr ctx,
                           std::string id) {
  return sys.spawn(init, std::move(ctx), std::move(id));
}

} // namespace cerebelum::actors
