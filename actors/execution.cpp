// The actor of one execution: the only writer of its history.
//
// ```
//                       spawn (take the start over, or fold history and
//                         |    re-issue resume_commands)
//                         v
//   +------------> executing <----------------------------+
//   |               |  |   |                              |
//   |        sleep  |  |   | approval                     | timer / approval /
//   |               v  |   v                              | result / command
//   |        sleeping  |  awaiting_approval --------------+
//   |           |      |        |
//   |  nothing in flight: ask the engine to passivate --> quit (normal)
//   |                  |
//   |                  v finish committed
//   +------------- terminal -- ask the engine to let go --> quit (normal)
//                     |  ^
//                     +--+ commands: answered already_terminal; a dead-letter
//                          retry resumes the execution (back to executing)
// ```
//
// Every state runs the same loop (execution_append.cpp): inputs (step
// outcomes, timer firings) and operators' commands (approve, reject, cancel,
// dead-letter retry) are folded into the state together with the decider's
// events in ONE append; the decision's commands run, the task router hears
// of task rows and the callers are answered only after the store
// acknowledged it. One append is in flight at a time. A start, and marking
// the execution failed after crashes, are appends of this actor too: no
// other code appends to an execution's history.

#include "actors/execution.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/skip.hpp>
#include <spdlog/spdlog.h>

#include "actors/backoff.hpp"
#include "actors/errc.hpp"
#include "actors/execution_actor.hpp"
#include "actors/step_runner.hpp"
#include "actors/task_api.hpp"

namespace cerebelum::actors {

const char* to_string(exec_phase x) {
  switch (x) {
    case exec_phase::executing: return "executing";
    case exec_phase::sleeping: return "sleeping";
    case exec_phase::awaiting_approval: return "awaiting_approval";
    default: return "terminal";
  }
}

namespace {

caf::behavior executing(execution_actor* self);
caf::behavior sleeping(execution_actor* self);
caf::behavior awaiting_approval(execution_actor* self);
caf::behavior terminal(execution_actor* self);

} // namespace

void transition(execution_actor* self, exec_phase next) {
  auto& st = self->state;
  if (st.phase != next)
    spdlog::trace("execution {}: {} -> {}", st.id, to_string(st.phase),
                  to_string(next));
  st.phase = next;
  switch (next) {
    case exec_phase::executing: self->become(executing(self)); return;
    case exec_phase::sleeping: self->become(sleeping(self)); break;
    case exec_phase::awaiting_approval:
      self->become(awaiting_approval(self));
      break;
    case exec_phase::terminal: self->become(terminal(self)); break;
  }
  // A terminal execution lets go of its actor at once; commands that the
  // engine forwarded meanwhile are answered first (the handshake counts them).
  auto delay = next == exec_phase::terminal
                 ? std::chrono::milliseconds{0}
                 : st.ctx->options().passivation_delay;
  auto gen = ++st.passivation_generation;
  if (delay.count() == 0)
    caf::anon_send(caf::actor_cast<caf::actor>(self), passivate_atom::value,
                   gen);
  else
    st.ctx->clock().send_after(self, delay, passivate_atom::value, gen);
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
      if (st.running.count(run->token) > 0) continue;
      auto d = dispatch_call(*st.ctx, caf::actor_cast<caf::actor>(self), *run);
      if (d.on_pool)
        st.running.emplace(run->token, execution_data::running_call{
                                         run->start_to_close_timeout_ms,
                                         std::move(d.on_pool)});
      else if (d.outcome)
        // Ran here (or cannot run): every caller processes the inbox next.
        st.inbox.push_back(std::move(*d.outcome));
    } else if (auto* timer = std::get_if<workflow::start_timer_command>(&cmd)) {
      caf::anon_send(st.ctx->scheduler(), schedule_atom::value, st.id,
                     timer->timer_id, timer->fire_at_ms);
    }
    // finish: the after-commit path tells the engine (execution_append.cpp).
  }
}

namespace {

/// A deferred timeout timer comes back (defer_timeout).
using retimer_atom = caf::atom_constant<caf::atom("retimer")>;

/// Whether the timer `timer_id` is the timeout of a native attempt that has
/// not had its time yet, counted from when a pool thread began running it
/// (its scheduling is committed before it is handed to the pool, and under
/// load that commit, or the wait for a free pool thread, can take longer
/// than the timeout): then it comes back when that time is up. Not recorded:
/// after a restart the attempt runs again and its timer, due from the store, is
/// deferred the same way.
bool defer_timeout(execution_actor* self, const std::string& timer_id) {
  auto token = workflow::timeout_timer_token(timer_id);
  if (token.empty()) return false;
  auto& st = self->state;
  auto i = st.running.find(std::string{token});
  if (i == st.running.end() || i->second.timeout_ms <= 0) return false;
  auto began = i->second.began ? i->second.began->load() : 0;
  // Still in the pool's queue (its threads all busy): its time has not
  // begun; look again after a whole timeout.
  auto left = began == 0 ? i->second.timeout_ms
                         : began + i->second.timeout_ms - st.ctx->now_ms();
  if (left <= 0) return false;
  // Its own message: not one the engine forwarded (the passivation
  // handshake counts those).
  st.ctx->clock().send_after(self, std::chrono::milliseconds{left},
                             retimer_atom::value, timer_id);
  return true;
}

void record_fired(execution_actor* self, const std::string& timer_id);

/// Whether the timer `timer_id` is the timeout of a task attempt: then the
/// task router says whether its time is up, counted from the attempt's
/// current lease (a task waiting for a free worker has not begun), and the
/// timer fires or comes back when it is. Not recorded, as for native
/// attempts: the actor stays while a task is open (it is executing), and
/// after a restart the timer, due from the store, is asked about again.
bool ask_task_timeout(execution_actor* self, const std::string& timer_id) {
  auto token = workflow::timeout_timer_token(timer_id);
  auto& st = self->state;
  auto router = st.ctx->task_router();
  if (token.empty() || !router || st.running.count(std::string{token}) > 0)
    return false;
  self
    ->request(router, std::chrono::seconds{10}, task_due_atom::value,
              std::string{token})
    .then(
      [self, timer_id](std::int64_t due) {
        auto left = due - self->state.ctx->now_ms();
        if (due == 0 || left <= 0) {
          record_fired(self, timer_id);
          return;
        }
        self->state.ctx->clock().send_after(
          self, std::chrono::milliseconds{left}, retimer_atom::value, timer_id);
      },
      [self, timer_id](caf::error&) {
        // No router to ask (stopping, restarting): the timeout fires.
        record_fired(self, timer_id);
      });
  return true;
}

/// Records that timer `timer_id` fired, unless it is a timeout deferred.
void fire_timer(execution_actor* self, const std::string& timer_id) {
  if (defer_timeout(self, timer_id) || ask_task_timeout(self, timer_id)) return;
  record_fired(self, timer_id);
}

void record_fired(execution_actor* self, const std::string& timer_id) {
  events::Event ev;
  ev.mutable_timer_fired()->set_timer_id(timer_id);
  ev.mutable_timer_fired()->set_fired_at_ms(self->state.ctx->now_ms());
  self->state.inbox.push_back(std::move(ev));
  process(self);
}

/// A message the engine forwarded was seen (passivation handshake).
void seen(execution_actor* self) {
  auto& st = self->state;
  ++st.wakes_seen;
  st.passivation_asked = false;
}

/// Handlers every live state shares.
caf::message_handler common(execution_actor* self) {
  return {
    [=](appended_atom, const append_outcome_ptr& out) {
      on_appended(self, out);
    },
    [=](again_atom) {
      resubmit(self);
    },
    [=](start_atom) {
      seen(self);
      auto rp = self->make_response_promise();
      submit_start(self, rp);
      return rp;
    },
    [=](command_atom, const operator_command_ptr& cmd) {
      seen(self);
      auto rp = self->make_response_promise();
      self->state.commands.push_back({cmd, rp});
      process(self);
      return rp;
    },
    [=](outcome_atom, const std::string& token, const event_ptr& ev) {
      // A native step's outcome, from the call pool.
      self->state.running.erase(token);
      self->state.inbox.push_back(*ev);
      process(self);
    },
    [=](outcome_atom, const std::string&, const std::string& token,
        const event_ptr& ev) {
      // A remote task's outcome, forwarded by the engine.
      seen(self);
      self->state.running.erase(token);
      self->state.inbox.push_back(*ev);
      process(self);
    },
    [=](wake_atom) {
      // Only this actor appends: its state is the history; a wake only
      // brings the actor back (timer due soon, boot, unparked).
      seen(self);
      process(self);
    },
    [=](timer_atom, const std::string& timer_id) {
      seen(self);
      fire_timer(self, timer_id);
    },
    [=](retimer_atom, const std::string& timer_id) {
      fire_timer(self, timer_id);
    },
    [=](tick_atom) {
      process(self);
    },
    [=](hello_atom, const caf::actor& engine) {
      // A restarted engine lost its map: register again and start the
      // passivation handshake's count afresh (the new engine counts from
      // this hello on).
      auto& st = self->state;
      if (st.unsent_start) {
        // The start request died with the old engine: nothing was written.
        self->quit();
        return;
      }
      st.wakes_seen = 0;
      st.passivation_asked = false;
      self->send(engine, hello_atom::value, st.id,
                 caf::actor_cast<caf::actor>(self));
      if (st.phase != exec_phase::executing) transition(self, st.phase);
    },
    [=](passivate_atom, std::uint64_t) {
      // Stale: the execution is executing again.
    },
    [=](crashes_atom, std::int32_t, const std::string&) {
      // The answer to a hello sent again to a restarted engine.
    },
    [=](passok_atom) {
      // Only reachable in a passive state (see below).
    },
  };
}

/// Handlers of the states that let go of the actor (sleeping, awaiting
/// approval, terminal).
caf::message_handler passive(execution_actor* self) {
  return {
    [=](passivate_atom, std::uint64_t gen) {
      auto& st = self->state;
      bool done = st.phase == exec_phase::terminal;
      if (gen != st.passivation_generation || st.appending() || st.reload_due
          || st.fail_due || !st.inbox.empty() || !st.commands.empty()
          || st.passivation_asked || (!done && !st.running.empty()))
        return;
      // A timer due soon: stay resident (the scheduler prewarmed us).
      auto wake = done ? std::nullopt : st.state().next_wake_ms();
      if (wake
          && *wake - st.ctx->now_ms()
               <= st.ctx->options().timer_prewarm.count())
        return;
      st.passivation_asked = true;
      caf::anon_send(st.ctx->registry(), passivate_atom::value, st.id,
                     st.wakes_seen, caf::actor_cast<caf::actor>(self));
    },
    [=](passok_atom) {
      auto& st = self->state;
      bool done = st.phase == exec_phase::terminal;
      if (st.passivation_asked && !st.appending() && !st.reload_due
          && !st.fail_due && (done || st.running.empty()))
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

caf::behavior terminal(execution_actor* self) {
  return passive(self).or_else(common(self));
}

/// An actor that quits at once (parked, set aside, unloadable).
caf::behavior gone(execution_actor*) {
  return {[](wake_atom) {}, [](hello_atom, const caf::actor&) {}};
}

caf::behavior boot_from_store(execution_actor* self);

/// Waits (everything else waits too) until `again` comes, then boots: after
/// a restart's backoff, or while the store is away.
caf::behavior boot_later(execution_actor* self) {
  self->set_default_handler(caf::skip);
  return {
    [=](again_atom) {
      self->become(boot_from_store(self));
    },
  };
}

/// An execution whose workflow version neither this node nor the store has
/// (parked): answers the commands the engine forwarded with its spawn — a
/// cancel ends it from its index row, anything else is refused with why —
/// then quits normally (the tick we sent ourselves comes after them).
caf::behavior unloadable(execution_actor* self, caf::error why) {
  // Anything else stays queued and goes with the actor, as before parking.
  self->set_default_handler(caf::skip);
  self->send(self, tick_atom::value);
  return {
    [=](command_atom, const operator_command_ptr& cmd) {
      auto rp = self->make_response_promise();
      auto& st = self->state;
      if (cmd->what == operator_command::kind::cancel && !st.appending())
        cancel_unloadable(self, {cmd, rp});
      else
        rp.deliver(why);
      return rp;
    },
    [=](appended_atom, const append_outcome_ptr& out) {
      on_appended(self, out);
    },
    [=](again_atom) {
      resubmit(self);
    },
    [=](tick_atom) {
      if (!self->state.appending()) self->quit();
    },
    [=](start_atom) {
      auto rp = self->make_response_promise();
      rp.deliver(why);
      return rp;
    },
    [](hello_atom, const caf::actor&) {},
    [](crashes_atom, std::int32_t, const std::string&) {},
  };
}

/// Folds the history, re-issues what may not have been carried out, then
/// decides.
caf::behavior boot_from_store(execution_actor* self) {
  auto& st = self->state;
  self->set_default_handler(caf::print_and_drop);
  missing_workflow missing;
  auto loaded = load_execution(*st.ctx, st.id, &missing);
  if (!loaded && api_error_code(loaded.error()) == errc::unavailable) {
    // The store is away: wait it out (backoff), count no crash.
    wait_for_store(self, api_error_message(loaded.error()));
    return boot_later(self);
  }
  while (!loaded && api_error_code(loaded.error()) == errc::unknown_workflow) {
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
    return unloadable(self, loaded.error());
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
    return gone(self);
  }
  if (!loaded) {
    // A crash: the engine counts it from our down message.
    self->quit(make_error(errc::internal,
                          "cannot load: " + api_error_message(loaded.error())));
    return gone(self);
  }
  store_answered(self);
  st.adopt(std::move(*loaded));
  if (st.state().terminal()) {
    // Spawned for a command (a dead-letter retry) or a late message: answer
    // it, then let go (the handshake counts what the engine forwarded).
    st.phase = exec_phase::terminal;
    self->send(self, tick_atom::value);
    return terminal(self);
  }
  run_commands(self, workflow::resume_commands(st.state()));
  if (st.ctx->take_unparked(st.id)) {
    // Timers that came due while parked were fired to a parked actor (and
    // lost); the scheduler will not fire those keys again for a while.
    auto now = st.ctx->now_ms();
    for (auto& t : st.state().timers())
      if (t.fire_at_ms <= now) self->send(self, timer_atom::value, t.id);
  }
  st.phase = phase_of(st.state());
  self->send(self, tick_atom::value);
  return executing(self);
}

/// Waits for the engine's answer to our hello (everything else waits): how
/// often this execution's actors crashed so far.
caf::behavior booting(execution_actor* self) {
  self->set_default_handler(caf::skip);
  return {
    [=](crashes_atom, std::int32_t n, std::string& reason) {
      auto& st = self->state;
      self->set_default_handler(caf::print_and_drop);
      st.crashes = n;
      st.crash_reason = std::move(reason);
      if (n > st.ctx->options().restart_budget) {
        st.phase = exec_phase::terminal;
        self->become(terminal(self));
        fail_after_crashes(self, n, st.crash_reason);
        return;
      }
      if (n > 0) {
        // Restarts back off: 100 ms after the first crash, doubling to 5 s.
        st.ctx->clock().send_after(self,
                                   backoff_delay(restart_backoff, n - 1, st.id),
                                   again_atom::value);
        self->become(boot_later(self));
        return;
      }
      self->become(boot_from_store(self));
    },
    [=](hello_atom, const caf::actor& engine) {
      // The engine was restarted before it answered: ask its successor.
      auto& st = self->state;
      self->send(engine, hello_atom::value, st.id,
                 caf::actor_cast<caf::actor>(self));
    },
  };
}

caf::behavior init(execution_actor* self, context_ptr ctx, std::string id) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.id = std::move(id);
  // An actor that goes while waiting for the store stops counting as a
  // waiter.
  self->attach_functor([ctx = st.ctx, waiting = st.store_waiting] {
    if (*waiting) ctx->health().wait_end();
  });
  self->set_exception_handler([self](std::exception_ptr& eptr) -> caf::error {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    auto& st = self->state;
    spdlog::error("execution {}: actor crashed ({} so far): {}", st.id,
                  st.crashes + 1, what);
    abandon_requests(self, make_error(errc::unavailable,
                                      "the actor of execution " + st.id
                                        + " crashed before recording the "
                                          "command; try again"));
    // The engine counts the crash from our down message, with `what`.
    return make_error(errc::internal, what);
  });
  caf::anon_send(st.ctx->registry(), hello_atom::value, st.id,
                 caf::actor_cast<caf::actor>(self));
  if (auto started = st.ctx->take_over(st.id)) {
    // A start: its first decision is appended when its request (delegated
    // by the engine right after our hello) arrives.
    st.def = started->def;
    st.exec = std::move(started->state);
    st.unsent_start = std::make_unique<started_execution>(std::move(*started));
    st.phase = exec_phase::executing;
    return executing(self);
  }
  return booting(self);
}

} // namespace

caf::actor spawn_execution(caf::actor_system& sys, context_ptr ctx,
                           std::string id) {
  return sys.spawn(init, std::move(ctx), std::move(id));
}

} // namespace cerebelum::actors
