// The engine: execution id -> live actor.
//
// ```
//   (wake|timer, id) --> live? --yes--> forward (count it)
//                          |
//                          no --> start_child(executions_sup, id), queue the
//                                 message until the actor says hello
//   (passivate, id, seen) from the actor: grant (passok) only when every
//   message forwarded to it was seen; then forget it. A later message spawns
//   a new actor from the events.
//   (started, id) from engine_api::start: spawn its first actor (which takes
//   the committed state handed over through the context); nothing queued.
//   Restarted by its supervisor: asks executions_sup for its children and
//   sends each (hello, engine); they register again with their id.
// ```

#include "actors/engine.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <unordered_map>
#include <vector>

#include "actors/messages.hpp"
#include "supervision/supervisor.hpp"

namespace cerebelum::actors {

namespace {

struct live_entry {
  caf::actor actor;
  /// Messages forwarded to `actor` since its hello.
  std::uint32_t sent = 0;
  /// Messages waiting for the actor's hello.
  std::vector<caf::message> pending;
  /// Set when the execution reported its end (until its actor is down).
  bool finished = false;
  final_state_ptr fin;
};

struct engine_data {
  context_ptr ctx;
  std::unordered_map<std::string, live_entry> live;
  std::unordered_map<caf::actor_addr, std::string> ids;
  std::unordered_map<std::string, std::vector<caf::actor>> waiters;
  std::uint64_t spawned = 0;
};

using engine_actor = caf::stateful_actor<engine_data>;

void on_finished(engine_actor* self, const std::string& id,
                 const final_state_ptr& fin);

void spawn_for(engine_actor* self, const std::string& id) {
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
              self->state.live.erase(i);
              // Waiters look at the store again (and keep waiting).
              on_finished(self, id, nullptr);
            }
          });
}

void route(engine_actor* self, const std::string& id, caf::message msg) {
  auto& live = self->state.live;
  auto i = live.find(id);
  if (i == live.end()) {
    live[id].pending.push_back(std::move(msg));
    spawn_for(self, id);
    return;
  }
  auto& e = i->second;
  if (!e.actor) {
    e.pending.push_back(std::move(msg));
    return;
  }
  ++e.sent;
  self->send(e.actor, std::move(msg));
}

void on_hello(engine_actor* self, const std::string& id, caf::actor a) {
  auto& st = self->state;
  auto& e = st.live[id];
  if (e.actor && e.actor != a) st.ids.erase(e.actor.address());
  e.actor = a;
  e.sent = 0;
  st.ids[a.address()] = id;
  self->monitor(a);
  for (auto& msg : e.pending) {
    ++e.sent;
    self->send(a, std::move(msg));
  }
  e.pending.clear();
}

void on_down(engine_actor* self, const caf::down_msg& msg) {
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
    st.live.erase(i);
    for (auto& m : pending)
      route(self, id, std::move(m));
  } else {
    // The supervisor restarts it; its hello will register the new actor.
    i->second.actor = nullptr;
  }
}

void on_finished(engine_actor* self, const std::string& id,
                 const final_state_ptr& fin) {
  if (auto e = self->state.live.find(id); e != self->state.live.end()) {
    e->second.finished = true;
    e->second.fin = fin;
  }
  auto i = self->state.waiters.find(id);
  if (i == self->state.waiters.end()) return;
  for (auto& w : i->second)
    self->send(w, finished_atom::value, id, fin);
  self->state.waiters.erase(i);
}

/// After a restart of the engine: the live executions register again.
void recall_executions(engine_actor* self) {
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

caf::behavior engine_fun(engine_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  self->set_down_handler([self](caf::down_msg& msg) {
    on_down(self, msg);
  });
  recall_executions(self);
  return {
    [=](started_atom, const std::string& id) {
      auto& live = self->state.live;
      if (live.count(id) > 0) {
        route(self, id, caf::make_message(wake_atom::value));
        return;
      }
      live.emplace(id, live_entry{});
      spawn_for(self, id);
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
      route(self, id, caf::make_message(outcome_atom::value, token, ev));
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
      self->state.waiters[id].push_back(std::move(w));
    },
    [=](watch_atom, const std::string& id, caf::actor w) {
      auto& st = self->state;
      auto i = st.live.find(id);
      if (i != st.live.end() && i->second.finished)
        return std::make_tuple(static_cast<std::int32_t>(watch_reply::finished),
                               i->second.fin);
      st.waiters[id].push_back(std::move(w));
      auto reply = i == st.live.end() ? watch_reply::unknown
                                      : watch_reply::watching;
      return std::make_tuple(static_cast<std::int32_t>(reply),
                             final_state_ptr{});
    },
    [=](unsub_atom, const std::string& id, const caf::actor& w) {
      auto i = self->state.waiters.find(id);
      if (i == self->state.waiters.end()) return;
      auto& xs = i->second;
      xs.erase(std::remove(xs.begin(), xs.end(), w), xs.end());
      if (xs.empty()) self->state.waiters.erase(i);
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

caf::actor spawn_engine(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(engine_fun, std::move(ctx));
}

} // namespace cerebelum::actors
