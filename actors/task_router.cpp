// The task router actor (see task_router.hpp and docs/worker-protocol.md).
//
// ```
//   execution --(tasks, id, changes)-------------> router   (after commit)
//   execution --(refused, id, token)-------------> router   (stale outcome)
//   front end --(tregister | tpoll | tbeat | ...)-> router   (typed requests)
//   router    --(outcome, id, token, event)------> engine --> execution
//   router    --(tick) at task_queue::next_due()-> router
// ```
//
// The queue decides; the actor holds the response promises of polls and
// completions that wait, carries out the queue's effects, and keeps one
// timer armed for the queue's next due moment (nothing is polled).

#include "actors/task_router.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_actor.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "actors/dead_letters.hpp"
#include "actors/task_checks.hpp"
#include "eventstore/codec.hpp"

namespace cerebelum::actors {

namespace {

/// Task rows read per page at boot.
constexpr std::size_t recovery_page = 5'000;

struct router_state {
  context_ptr ctx;
  std::unique_ptr<task_queue> queue;
  /// Polls waiting for a task, by poll id.
  std::unordered_map<std::uint64_t, caf::typed_response_promise<poll_reply>>
    polls;
  /// Completions waiting for their commit, by internal token.
  std::unordered_map<std::string,
                     caf::typed_response_promise<task_result<complete_info>>>
    completions;
  /// Due moment of the tick armed last (0 = none).
  std::int64_t armed_at = 0;
};

using router_actor = task_router_actor::stateful_pointer<router_state>;

/// Carries out the queue's effects and arms the tick for its next due
/// moment unless one is armed for that moment or earlier.
void settle(router_actor self) {
  auto& st = self->state;
  // The figures first: whoever an answer below reaches sees metrics that
  // include what it answers (a leased task is counted as leased).
  auto& m = st.ctx->metrics();
  for (auto& t : st.queue->take_finished())
    m.step_finished("task", t.completed ? "completed" : "failed", t.seconds);
  for (auto& q : st.queue->figures())
    m.task_queue(q.queue, q.ready, q.leased, q.workers, q.lease_expiries);
  for (auto& effect : st.queue->take_effects()) {
    if (auto* p = std::get_if<poll_answered>(&effect)) {
      auto i = st.polls.find(p->poll_id);
      if (i == st.polls.end()) continue;
      auto rp = std::move(i->second);
      st.polls.erase(i);
      rp.deliver(std::move(p->result));
    } else if (auto* c = std::get_if<completion_answered>(&effect)) {
      auto i = st.completions.find(c->token);
      if (i == st.completions.end()) continue;
      auto rp = std::move(i->second);
      st.completions.erase(i);
      rp.deliver(std::move(c->result));
    } else {
      auto& ev = std::get<event_to_send>(effect);
      if (auto engine = st.ctx->registry())
        caf::anon_send(engine, outcome_atom::value, ev.execution_id, ev.token,
                       ev.event);
    }
  }
  auto due = st.queue->next_due();
  if (due == 0 || (st.armed_at != 0 && st.armed_at <= due)) return;
  st.armed_at = due;
  st.ctx->clock().send_at(caf::actor_cast<caf::strong_actor_ptr>(self), due,
                          caf::make_message(tick_atom::value));
}

void recover(router_actor self) {
  auto& st = self->state;
  if (!st.ctx->has_store()) return;
  std::string token;
  std::size_t n = 0;
  do {
    auto page = st.ctx->store().all_tasks(recovery_page, token);
    if (!page) {
      spdlog::error("task router: cannot read task rows: {}",
                    eventstore::to_string(page.err()));
      throw std::runtime_error("task router: cannot read task rows");
    }
    for (auto& row : page->rows) {
      st.queue->upsert(std::move(row));
      ++n;
    }
    token = page->next_page_token;
  } while (!token.empty());
  spdlog::info("task router: {} open task(s) recovered from the store", n);
}

/// Whether the history of `execution_id` records an outcome of attempt
/// `token` by `worker` (a retried CompleteTask after the router forgot it).
bool recorded_in_history(engine_context& ctx, const std::string& execution_id,
                         const std::string& token, const std::string& worker) {
  bool found = false;
  auto n = eventstore::read_history(
    ctx.store(), execution_id, 0, [&](const events::Event& ev) {
      const std::string* t = nullptr;
      const std::string* w = nullptr;
      if (ev.has_step_completed()) {
        t = &ev.step_completed().attempt_token();
        w = &ev.step_completed().worker_id();
      } else if (ev.has_step_failed()) {
        t = &ev.step_failed().attempt_token();
        w = &ev.step_failed().worker_id();
      } else if (ev.has_step_suspended()) {
        t = &ev.step_suspended().attempt_token();
        w = &ev.step_suspended().worker_id();
      }
      if (t != nullptr && *t == token && *w == worker) found = true;
      return !found;
    });
  return n.ok() && found;
}

/// Runs `work` (a store read or write) on a detached actor and delivers its
/// result to `rp`: the router's thread never waits for the store.
template <class T, class F>
caf::typed_response_promise<T> off_thread(router_actor self, F work) {
  auto rp = self->make_response_promise<T>();
  auto helper = self->spawn<caf::detached>(
    [work = std::move(work)](caf::event_based_actor* helper) -> caf::behavior {
      return {
        [=](caf::get_atom) -> T {
          helper->quit();
          return work();
        },
      };
    });
  self->request(helper, caf::infinite, caf::get_atom::value)
    .then(
      [rp](T& result) mutable {
        rp.deliver(std::move(result));
      },
      [rp](caf::error&) mutable {
        rp.deliver(
          T::fail(task_errc::unavailable, "the node's task router stopped"));
      });
  return rp;
}

task_router_actor::behavior_type router_fun(router_actor self, context_ptr ctx,
                                            router_options opts) {
  self->state.ctx = std::move(ctx);
  self->state.queue = std::make_unique<task_queue>(std::move(opts));
  recover(self);
  return {
    [=](tasks_atom, const std::string& id, const task_changes_ptr& changes) {
      auto& q = *self->state.queue;
      for (auto& row : changes->upserts) {
        auto copy = row;
        copy.execution_id = id;
        q.upsert(std::move(copy));
      }
      auto now = self->state.ctx->now_ms();
      for (auto& token : changes->deletes)
        q.remove(token, now);
      q.dispatch(now);
      settle(self);
    },
    [=](refused_atom, const std::string&, const std::string& token) {
      self->state.queue->refuse(token);
      self->state.queue->dispatch(self->state.ctx->now_ms());
      settle(self);
    },
    [=](task_register_atom,
        worker_registration& reg) -> task_result<registration_info> {
      auto& st = self->state;
      using res_t = task_result<registration_info>;
      auto defs = check_registration(reg);
      if (!defs) return res_t{std::nullopt, std::move(defs.error)};
      if (!st.queue->options().allow_worker_calls)
        if (auto err = check_no_native_calls(reg.worker_id, *defs.value)) {
          spdlog::warn("worker {} refused: {}", reg.worker_id, err->message);
          return res_t{std::nullopt, std::move(err)};
        }
      registration_info info;
      info.lease_timeout_ms = st.queue->options().default_lease.count();
      std::vector<std::pair<std::string, std::uint64_t>> versions;
      for (auto& d : *defs.value) {
        info.workflows.push_back(d.name);
        versions.emplace_back(d.name, d.version_hash);
      }
      // Replaces what this worker held; what no one needs any more is
      // released. A name another source owns refuses the whole call.
      if (auto why = st.ctx->register_definitions(reg.worker_id, reg.identity,
                                                  std::move(*defs.value),
                                                  reg.may_replace)) {
        spdlog::warn("worker {} refused: {}", reg.worker_id, *why);
        return res_t::fail(task_errc::permission_denied, std::move(*why));
      }
      for (auto& [name, version] : versions)
        spdlog::info("worker {} registered workflow {} (version {})",
                     reg.worker_id, name, version);
      st.queue->add_worker(reg.worker_id, reg.queues, reg.max_in_flight,
                           self->state.ctx->now_ms());
      spdlog::info("worker {} registered for {} queue(s), max in flight {}",
                   reg.worker_id, reg.queues.size(),
                   std::max<std::uint32_t>(1, reg.max_in_flight));
      settle(self);
      return task_result<registration_info>::ok(std::move(info));
    },
    [=](task_poll_atom, std::uint64_t id, std::string& worker,
        std::vector<std::string>& queues,
        std::int64_t wait_ms) -> caf::result<poll_reply> {
      auto& st = self->state;
      auto rp = self->make_response_promise<poll_reply>();
      st.polls.emplace(id, rp);
      st.queue->poll(id, worker, std::move(queues),
                     std::chrono::milliseconds{wait_ms},
                     self->state.ctx->now_ms());
      settle(self);
      return rp;
    },
    [=](task_unpoll_atom, std::uint64_t id) {
      self->state.queue->cancel_poll(id);
      settle(self);
    },
    [=](task_release_atom, const std::string& worker,
        const std::string& token) {
      self->state.queue->release(worker, token, self->state.ctx->now_ms());
      settle(self);
    },
    [=](task_beat_atom, const std::string& worker, const std::string& token,
        const std::string& details) {
      auto r = self->state.queue->heartbeat(worker, token, details,
                                            self->state.ctx->now_ms());
      settle(self);
      return r;
    },
    [=](task_complete_atom, const std::string& worker, const std::string& token,
        const task_outcome& outcome,
        bool want_next) -> caf::result<task_result<complete_info>> {
      auto& st = self->state;
      auto d = st.queue->complete(worker, token, outcome,
                                  self->state.ctx->now_ms(), want_next);
      switch (d.kind) {
        case complete_decision::answered: settle(self); return d.answer;
        case complete_decision::pending: {
          auto rp = self->make_response_promise<task_result<complete_info>>();
          st.completions.insert_or_assign(d.token, rp);
          settle(self);
          return rp;
        }
        case complete_decision::look_in_history: break;
      }
      // Unknown here (e.g. recorded before a node restart): look in the
      // history off the router's thread.
      return off_thread<task_result<complete_info>>(
        self, [ctx = st.ctx, exec_id = d.execution_id, internal = d.token,
               worker, token] {
          if (recorded_in_history(*ctx, exec_id, internal, worker))
            return task_result<complete_info>::ok({false, std::nullopt});
          return task_result<complete_info>::fail(
            task_errc::stale_token,
            "attempt " + redacted(token) + " is not leased to worker '" + worker
              + "' (unknown, expired or already ended)");
        });
    },
    [=](task_leave_atom, const std::string& worker) {
      auto n = self->state.queue->drop_worker(
        worker, "worker '" + worker + "' unregistered",
        self->state.ctx->now_ms());
      self->state.ctx->unregister_definitions(worker);
      settle(self);
      return task_result<std::uint32_t>::ok(n);
    },
    [=](task_lost_atom, const std::string& worker, const std::string& reason) {
      self->state.queue->drop_worker(worker,
                                     "worker '" + worker + "' lost: " + reason,
                                     self->state.ctx->now_ms());
      self->state.ctx->unregister_definitions(worker);
      settle(self);
    },
    [=](dlq_list_atom, const std::string& queue, std::uint64_t page_size,
        const std::string& page_token)
      -> caf::result<task_result<dead_letter_list>> {
      return off_thread<task_result<dead_letter_list>>(
        self, [ctx = self->state.ctx, queue, page_size, page_token] {
          return list_dead_letters(
            *ctx, queue, static_cast<std::size_t>(page_size), page_token);
        });
    },
    [=](dlq_retry_atom, std::int64_t id, const std::string& by,
        const std::string& note) -> caf::result<task_result<std::string>> {
      return off_thread<task_result<std::string>>(
        self, [ctx = self->state.ctx, id, who = operator_id{by, note}] {
          return retry_dead_letter(*ctx, id, who);
        });
    },
    [=](stats_atom) {
      auto& q = *self->state.queue;
      return std::make_tuple(q.open_tasks(), q.ready_tasks(), q.leased_total());
    },
    [=](task_due_atom, const std::string& token) {
      return self->state.queue->timeout_due(token, self->state.ctx->now_ms());
    },
    [=](tick_atom) {
      self->state.armed_at = 0;
      self->state.queue->expire(self->state.ctx->now_ms());
      settle(self);
    },
  };
}

} // namespace

task_router_actor spawn_task_router(caf::actor_system& sys, context_ptr ctx,
                                    router_options opts) {
  return sys.spawn(router_fun, std::move(ctx), std::move(opts));
}

} // namespace cerebelum::actors
