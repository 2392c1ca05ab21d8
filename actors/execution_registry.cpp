// The execution registry: execution id -> live actor.
//
// ```
//   (wake|timer, id) --> live? --yes--> forward (count it)
//                          |
//                          no --> start_child(executions_sup, id), queue the
//                                 message until the actor says hello
//   (passivate, id, seen) from the actor: grant (passok) only when every
//   message forwarded to it was seen; then forget it. A later message spawns
//   a new actor from the events.
//   (start, id, first decision) from engine_api::start, a request: not
//   live -> hand the uncommitted first decision over (context) and spawn;
//   then delegated to the actor (queued until its hello): the actor appends
//   and answers the caller after the commit. (command, id, cmd) likewise,
//   but asked on the caller's behalf: a command bounced by an actor that
//   went down before taking it waits for the actor's successor.
//   Restarted by its supervisor: asks executions_sup for its children and
//   sends each (hello, engine); they register again with their id.
// ```

#include "actors/execution_registry.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <unordered_map>
#include <vector>

#include "actors/errc.hpp"
#include "actors/messages.hpp"
#include "supervision/supervisor.hpp"

namespace cerebelum::actors {

namespace {

struct pending_message {
  caf::message msg;
  /// Set for a request: delegated to the actor, which answers the caller.
  caf::response_promise rp;
};

struct live_entry {
  caf::actor actor;
  /// Messages forwarded to `actor` since its hello.
  std::uint32_t sent = 0;
  /// Messages waiting for the actor's hello (with the caller to answer, for
  /// requests).
  std::vector<pending_message> pending;
  /// Commands `actor` bounced because it went down before taking them;
  /// its down message says where they go (on_bounced).
  std::vector<pending_message> bounced;
  /// Set when the execution reported its end (until its actor is down).
  bool finished = false;
  final_state_ptr fin;
};

struct registry_data {
  context_ptr ctx;
  std::unordered_map<std::string, live_entry> live;
  std::unordered_map<caf::actor_addr, std::string> ids;
  /// Subscribed waiters by execution id; shared with the functor that tells
  /// them when the registry exits (gone_atom).
  std::shared_ptr<std::unordered_map<std::string, std::vector<caf::actor>>>
    waiters = std::make_shared<
      std::unordered_map<std::string, std::vector<caf::actor>>>();
  /// Crashes of each execution's actors (count, last reason), from their
  /// down messages; forgotten when the execution finishes.
  std::unordered_map<std::string, std::pair<std::int32_t, std::string>> crashes;
  std::uint64_t spawned = 0;
};

using registry_actor = caf::stateful_actor<registry_data>;

void on_finished(registry_actor* self, const std::string& id,
                 const final_state_ptr& fin);

void spawn_for(registry_actor* self, const std::string& id) {
  auto sup = self->state.ctx->executions_sup();
  ++self->state.spawned;
  supervision::request_start_child(self, sup, caf::make_message(id))
    .then([](caf::actor&) {},
          [self, id](caf::error& err) {
            spdlog::error("cannot spawn execution {}: {}", id,
                          self->system().render(err));
            self->state.ctx->drop_handover(id);
            auto i = self->state.live.find(id);
            if (i != self->state.live.end() && !i->second.actor) {
              for (auto& p : i->second.pending)
                if (p.rp.pending())
                  p.rp.deliver(make_error(errc::unavailable,
                                          "cannot spawn execution " + id));
              self->state.live.erase(i);
              // Waiters look at the store again (and keep waiting).
              on_finished(self, id, nullptr);
            }
          });
}

void route(registry_actor* self, const std::string& id, caf::message msg,
           caf::response_promise rp = {});

/// A command sent to an actor that went down before taking it (it crashed
/// while answering an earlier command, whose caller may already be sending
/// again): the command was not recorded. If the actor crashed, it goes to
/// the successor the supervisor is starting; if it quit normally (finished,
/// or could not load its history), the caller hears "receiver down" and
/// reads the history, as before.
void on_bounced(registry_actor* self, const std::string& id,
                const caf::actor& dead, pending_message m) {
  auto i = self->state.live.find(id);
  if (i == self->state.live.end()) {
    // Its down message came first and it had quit normally.
    m.rp.deliver(caf::make_error(caf::sec::request_receiver_down));
  } else if (i->second.actor == dead) {
    // Its down message is on its way: on_down decides.
    i->second.bounced.push_back(std::move(m));
  } else {
    // Crashed: the successor takes it (queued until its hello).
    route(self, id, std::move(m.msg), std::move(m.rp));
  }
}

void forward(registry_actor* self, const std::string& id, live_entry& e,
             pending_message m) {
  ++e.sent;
  if (!m.rp.pending()) {
    self->send(e.actor, std::move(m.msg));
  } else if (m.msg.match_element<command_atom>(0)) {
    // Asked rather than delegated, so that a command the actor never took
    // is not lost to "receiver down" but goes to its successor.
    auto dest = e.actor;
    self->request(dest, caf::infinite, m.msg)
      .then(
        [rp = m.rp](ok_atom) mutable {
          rp.deliver(ok_atom::value);
        },
        [self, id, dest, m](caf::error& err) mutable {
          if (err == caf::sec::request_receiver_down)
            on_bounced(self, id, dest, std::move(m));
          else
            m.rp.deliver(std::move(err));
        });
  } else {
    m.rp.delegate(e.actor, std::move(m.msg));
  }
}

void route(registry_actor* self, const std::string& id, caf::message msg,
           caf::response_promise rp) {
  auto& live = self->state.live;
  auto i = live.find(id);
  pending_message m{std::move(msg), std::move(rp)};
  if (i == live.end()) {
    live[id].pending.push_back(std::move(m));
    spawn_for(self, id);
    return;
  }
  auto& e = i->second;
  if (!e.actor) {
    e.pending.push_back(std::move(m));
    return;
  }
  forward(self, id, e, std::move(m));
}

void on_hello(registry_actor* self, const std::string& id, caf::actor a) {
  auto& st = self->state;
  auto& e = st.live[id];
  if (e.actor && e.actor != a) {
    // Its predecessor is gone: what it bounced goes to its successor.
    st.ids.erase(e.actor.address());
    for (auto& m : e.bounced)
      e.pending.push_back(std::move(m));
    e.bounced.clear();
  }
  e.actor = a;
  e.sent = 0;
  st.ids[a.address()] = id;
  self->monitor(a);
  // Before anything forwarded: the actor fails the execution when its
  // actors crashed more often than the restart budget allows.
  auto c = st.crashes.find(id);
  if (c == st.crashes.end())
    self->send(a, crashes_atom::value, std::int32_t{0}, std::string{});
  else
    self->send(a, crashes_atom::value, c->second.first, c->second.second);
  auto pending = std::move(e.pending);
  e.pending.clear();
  for (auto& m : pending)
    forward(self, id, e, std::move(m));
}

void on_down(registry_actor* self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto j = st.ids.find(msg.source);
  if (j == st.ids.end()) return;
  auto id = std::move(j->second);
  st.ids.erase(j);
  auto i = st.live.find(id);
  if (i == st.live.end() || i->second.actor.address() != msg.source) return;
  if (supervision::is_normal_exit(msg.reason)) {
    // Finished (or refused to start): forget it; respawn for late messages.
    auto pending = std::move(i->second.pending);
    for (auto& m : i->second.bounced)
      m.rp.deliver(caf::make_error(caf::sec::request_receiver_down));
    st.live.erase(i);
    for (auto& m : pending)
      route(self, id, std::move(m.msg), std::move(m.rp));
  } else {
    // The supervisor restarts it; its hello will register the new actor
    // (and learn how often its predecessors crashed).
    auto& c = st.crashes[id];
    ++c.first;
    c.second = api_error_message(msg.reason);
    i->second.actor = nullptr;
    auto& e = i->second;
    for (auto& m : e.bounced)
      e.pending.push_back(std::move(m));
    e.bounced.clear();
  }
}

void on_finished(registry_actor* self, const std::string& id,
                 const final_state_ptr& fin) {
  self->state.crashes.erase(id);
  if (auto e = self->state.live.find(id); e != self->state.live.end()) {
    e->second.finished = true;
    e->second.fin = fin;
  }
  auto i = self->state.waiters->find(id);
  if (i == self->state.waiters->end()) return;
  for (auto& w : i->second)
    self->send(w, finished_atom::value, id, fin);
  self->state.waiters->erase(i);
}

/// After a restart of the engine: the live executions register again.
void recall_executions(registry_actor* self) {
  auto sup = self->state.ctx->executions_sup();
  if (!sup) return;
  supervision::request_which_children(self, sup,
                                      caf::duration{std::chrono::seconds{30}})
    .then(
      [self](std::vector<supervision::child_info>& xs) {
        auto me = caf::actor_cast<caf::actor>(self);
        for (auto& x : xs)
          if (x.child) self->send(x.child, hello_atom::value, me);
      },
      [self](caf::error& err) {
        spdlog::error("engine: cannot list the live executions: {}",
                      self->system().render(err));
      });
}

caf::behavior registry_fun(registry_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  self->set_down_handler([self](caf::down_msg& msg) {
    on_down(self, msg);
  });
  self->attach_functor([waiters = self->state.waiters](const caf::error& why) {
    for (auto& [id, xs] : *waiters)
      for (auto& w : xs)
        caf::anon_send(w, gone_atom::value, why);
  });
  recall_executions(self);
  return {
    [=](start_atom, const std::string& id, const started_execution_ptr& x) {
      auto& live = self->state.live;
      if (live.count(id) == 0) {
        // The first actor appends the first decision handed over; a live
        // one is an execution with this id already (it answers false).
        self->state.ctx->hand_over(id, std::move(*x));
        live.emplace(id, live_entry{});
        spawn_for(self, id);
      }
      auto rp = self->make_response_promise();
      route(self, id, caf::make_message(start_atom::value), rp);
      return rp;
    },
    [=](command_atom, const std::string& id, const operator_command_ptr& cmd) {
      auto rp = self->make_response_promise();
      route(self, id, caf::make_message(command_atom::value, cmd), rp);
      return rp;
    },
    [=](resumed_atom, const std::string& id) {
      if (auto e = self->state.live.find(id); e != self->state.live.end()) {
        e->second.finished = false;
        e->second.fin = nullptr;
      }
    },
    [=](wake_atom, const std::string& id) {
      route(self, id, caf::make_message(wake_atom::value));
    },
    [=](timer_atom, const std::string& id, const std::string& timer_id) {
      route(self, id, caf::make_message(timer_atom::value, timer_id));
    },
    [=](outcome_atom, const std::string& id, const std::string& token,
        const event_ptr& ev) {
      // A remote task's outcome (from the task router).
      route(self, id, caf::make_message(outcome_atom::value, id, token, ev));
    },
    [=](hello_atom, const std::string& id, caf::actor a) {
      on_hello(self, id, std::move(a));
    },
    [=](passivate_atom, const std::string& id, std::uint32_t seen,
        caf::actor a) {
      auto& st = self->state;
      auto i = st.live.find(id);
      if (i == st.live.end() || i->second.actor != a || i->second.sent != seen
          || !i->second.pending.empty())
        return;
      st.ids.erase(a.address());
      self->demonitor(a);
      st.live.erase(i);
      self->send(a, passok_atom::value);
    },
    [=](finished_atom, const std::string& id) {
      on_finished(self, id, nullptr);
    },
    [=](finished_atom, const std::string& id, const final_state_ptr& fin) {
      on_finished(self, id, fin);
    },
    [=](subscribe_atom, const std::string& id, caf::actor w) {
      (*self->state.waiters)[id].push_back(std::move(w));
    },
    [=](watch_atom, const std::string& id, caf::actor w) {
      auto& st = self->state;
      auto i = st.live.find(id);
      if (i != st.live.end() && i->second.finished)
        return std::make_tuple(static_cast<std::int32_t>(watch_reply::finished),
                               i->second.fin);
      (*st.waiters)[id].push_back(std::move(w));
      auto reply = i == st.live.end() ? watch_reply::unknown
                                      : watch_reply::watching;
      return std::make_tuple(static_cast<std::int32_t>(reply),
                             final_state_ptr{});
    },
    [=](unsub_atom, const std::string& id, const caf::actor& w) {
      auto i = self->state.waiters->find(id);
      if (i == self->state.waiters->end()) return;
      auto& xs = i->second;
      xs.erase(std::remove(xs.begin(), xs.end(), w), xs.end());
      if (xs.empty()) self->state.waiters->erase(i);
    },
    [=](watch_atom, const std::string& id) {
      // Tests: how many waiters `id` has (a waiter has subscribed).
      auto i = self->state.waiters->find(id);
      return static_cast<std::uint64_t>(
        i == self->state.waiters->end() ? 0 : i->second.size());
    },
    [=](lookup_atom, const std::string& id) {
      auto i = self->state.live.find(id);
      return i == self->state.live.end() ? caf::actor{} : i->second.actor;
    },
    [=](stats_atom) {
      return std::make_tuple(
        static_cast<std::uint64_t>(self->state.live.size()),
        self->state.spawned);
    },
  };
}

} // namespace

caf::actor spawn_execution_registry(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(registry_fun, std::move(ctx));
}

} // namespace cerebelum::actors
