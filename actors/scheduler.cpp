// The scheduler of durable timers.
//
// Timer rows live in the store (written in the same append as the
// timer_started event). The scheduler keeps only the near future in memory:
//
// ```
//   store.due_timers(now + horizon) --page--> heap (fire_at, id, timer)
//   schedule(id, timer, fire_at <= loaded_until) -----^
//   tick at heap top: pop due --> engine (timer, id, timer_id)
//   (and timer_prewarm earlier: engine (wake, id), so that the actor is
//   loaded when the timer fires)
//   at loaded_until - horizon/2: page again (far-future timers enter)
// ```
//
// A sleeper whose wake-up is beyond the horizon costs the node nothing but
// its rows. Firing is at-least-once: the execution ignores a timer it no
// longer waits for; the row is deleted by the append of timer_fired.

#include "actors/scheduler.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <queue>
#include <set>
#include <unordered_map>

#include "actors/backoff.hpp"
#include "actors/messages.hpp"

namespace cerebelum::actors {

namespace {

/// Most timer rows read per page.
constexpr std::size_t page_limit = 20'000;

struct entry {
  std::int64_t fire_at;
  std::string id;
  std::string timer;
  /// Wakes the execution ahead of the timer instead of firing it.
  bool prewarm = false;
  bool operator>(const entry& other) const {
    return fire_at > other.fire_at;
  }
};

struct scheduler_data {
  context_ptr ctx;
  std::priority_queue<entry, std::vector<entry>, std::greater<entry>> heap;
  /// Keys (id + '\0' + timer) in the heap.
  std::set<std::string> known;
  /// Keys fired recently, with their fire time (dropped after a horizon).
  std::unordered_map<std::string, std::int64_t> fired;
  /// The heap holds every timer up to this time.
  std::int64_t loaded_until = 0;
  /// When the next page is read.
  std::int64_t next_page_at = 0;
  /// Pages that failed in a row (the store is away): the backoff's exponent.
  int page_failures = 0;
  /// The last failure that was not an outage (logged once, not per retry).
  std::string failing;
  /// Time of the tick armed last (0 = none).
  std::int64_t armed_at = 0;
  std::uint64_t fired_count = 0;
};

using scheduler_actor = caf::stateful_actor<scheduler_data>;

std::string key_of(const std::string& id, const std::string& timer) {
  std::string k = id;
  k += '\0';
  k += timer;
  return k;
}

void push(scheduler_actor* self, std::int64_t fire_at, const std::string& id,
          const std::string& timer) {
  auto& st = self->state;
  auto k = key_of(id, timer);
  if (st.fired.count(k) > 0 || !st.known.insert(k).second) return;
  st.heap.push({fire_at, id, timer, false});
  auto ahead = fire_at - st.ctx->options().timer_prewarm.count();
  if (ahead > st.ctx->now_ms()) st.heap.push({ahead, id, timer, true});
}

void page(scheduler_actor* self) {
  auto& st = self->state;
  auto horizon = st.ctx->options().timer_horizon.count();
  auto until = st.ctx->now_ms() + horizon;
  auto rows = st.ctx->store().due_timers(until, page_limit);
  if (!rows) {
    // Timers already in the heap still fire; the next page waits with a
    // backoff (the store's health logs an outage, once).
    auto& health = st.ctx->health();
    health.failed(rows.err());
    if (st.page_failures == 0) health.wait_begin();
    auto text = eventstore::to_string(rows.err());
    if (!is_outage(rows.err()) && text != st.failing)
      spdlog::warn("scheduler: cannot read timers, retrying with backoff: {}",
                   text);
    st.failing = std::move(text);
    st.next_page_at
      = st.ctx->now_ms()
        + backoff_delay(store_backoff, st.page_failures++, "scheduler").count();
    return;
  }
  if (st.page_failures > 0) {
    st.ctx->health().wait_end();
    st.page_failures = 0;
    st.failing.clear();
  }
  st.ctx->health().succeeded();
  for (auto& r : *rows)
    push(self, r.fire_at_ms, r.execution_id, r.timer_id);
  st.loaded_until = rows->size() == page_limit ? rows->back().fire_at_ms
                                               : until;
  st.next_page_at = st.loaded_until - horizon / 2;
  // Forget fired keys older than a horizon: their rows are long gone.
  auto cutoff = st.ctx->now_ms() - horizon;
  for (auto i = st.fired.begin(); i != st.fired.end();)
    i = i->second < cutoff ? st.fired.erase(i) : std::next(i);
}

void arm(scheduler_actor* self) {
  auto& st = self->state;
  auto next = st.next_page_at;
  if (!st.heap.empty()) next = std::min(next, st.heap.top().fire_at);
  if (st.armed_at != 0 && st.armed_at <= next) return;
  st.armed_at = next;
  st.ctx->clock().send_at(caf::actor_cast<caf::strong_actor_ptr>(self), next,
                          caf::make_message(tick_atom::value));
}

void fire_due(scheduler_actor* self) {
  auto& st = self->state;
  auto now = st.ctx->now_ms();
  auto engine = st.ctx->registry();
  while (!st.heap.empty() && st.heap.top().fire_at <= now) {
    auto e = st.heap.top();
    st.heap.pop();
    if (e.prewarm) {
      self->send(engine, wake_atom::value, e.id);
      continue;
    }
    auto k = key_of(e.id, e.timer);
    st.known.erase(k);
    st.fired.emplace(std::move(k), e.fire_at);
    ++st.fired_count;
    st.ctx->metrics().timer_fired(static_cast<double>(now - e.fire_at) / 1e3);
    self->send(engine, timer_atom::value, e.id, e.timer);
  }
}

caf::behavior scheduler_fun(scheduler_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  page(self);
  arm(self);
  return {
    [=](schedule_atom, const std::string& id, const std::string& timer,
        std::int64_t fire_at) {
      if (fire_at > self->state.loaded_until) return; // paged in later
      push(self, fire_at, id, timer);
      arm(self);
    },
    [=](tick_atom) {
      auto& st = self->state;
      st.armed_at = 0;
      fire_due(self);
      if (st.ctx->now_ms() >= st.next_page_at) page(self);
      fire_due(self);
      arm(self);
    },
    [=](stats_atom) {
      return std::make_tuple(
        static_cast<std::uint64_t>(self->state.heap.size()),
        self->state.fired_count);
    },
  };
}

} // namespace

caf::actor spawn_scheduler(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(scheduler_fun, std::move(ctx));
}

} // namespace cerebelum::actors
