#include "actors/resurrector.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/backoff.hpp"
#include "actors/errc.hpp"
#include "actors/messages.hpp"
#include "eventstore/codec.hpp"

namespace cerebelum::actors {

namespace {

constexpr std::size_t resurrect_page = 2'000;

/// Damaged executions a report names, at most (the count covers them all).
constexpr std::size_t damaged_listed = 10;

/// Where the resurrector is; shared by its handler invocations.
struct resurrection {
  std::string token;
  std::uint64_t running = 0;
  std::uint64_t sleeping = 0;
  std::uint64_t awaiting = 0;
  std::uint64_t damaged = 0;
  std::vector<std::string> damaged_ids;
  /// The error of the last failed page (logged once, not at every retry).
  std::string failing;
  /// Pages that failed in a row: the backoff's exponent.
  int failures = 0;
  std::chrono::steady_clock::time_point started
    = std::chrono::steady_clock::now();
};

/// Returns the damage that stops the history of `id` from being read back,
/// if any. Other errors (an unreachable store) are left to the actor.
std::optional<eventstore::error> damage_of(engine_context& ctx,
                                           const std::string& id) {
  auto n = eventstore::read_history(ctx.store(), id, 0,
                                    [](const events::Event&) {
                                      return true;
                                    });
  if (!n && is_store_damage(n.err())) return std::move(n).err();
  return std::nullopt;
}

std::string name_damaged(const resurrection& r) {
  std::string out;
  for (const auto& id : r.damaged_ids)
    out += (out.empty() ? "" : ", ") + id;
  if (r.damaged > r.damaged_ids.size())
    out += ", and " + std::to_string(r.damaged - r.damaged_ids.size())
           + " more";
  return out;
}

enum class paged {
  /// Another page follows (or a retry is due).
  more,
  /// Every open execution was paged.
  done,
  /// The index cannot be read: the node stops.
  fatal,
};

/// One page of open executions: respawns the running ones whose history
/// reads back, sets aside the damaged ones.
paged resurrect_page_of(caf::event_based_actor* self, engine_context& ctx,
                        resurrection& r) {
  auto page = ctx.store().open_executions(resurrect_page, r.token);
  if (!page) {
    const auto& err = page.err();
    if (is_store_damage(err)) {
      // The index itself cannot be read: the node cannot know what it
      // should run. It stops, once, rather than serve a part and retry.
      auto what
        = "the store is damaged: cannot list the open executions ("
          + std::to_string(r.running + r.sleeping + r.awaiting + r.damaged)
          + " listed before the damage): " + eventstore::to_string(err)
          + "; the node stops: restore the store from a backup";
      spdlog::critical("resurrector: {}", what);
      ctx.fatal(make_error(errc::store_damaged, std::move(what)));
      return paged::fatal;
    }
    // An outage is the store's health to report (once); anything else is
    // logged here, once per distinct error.
    ctx.health().failed(err);
    if (r.failures == 0) ctx.health().wait_begin();
    auto text = eventstore::to_string(err);
    if (text != r.failing && !is_outage(err))
      spdlog::error("resurrector: cannot page open executions, retrying "
                    "with backoff: {}",
                    text);
    r.failing = std::move(text);
    ctx.clock().send_after(
      self, backoff_delay(store_backoff, r.failures++, "resurrector"),
      tick_atom::value);
    return paged::more;
  }
  ctx.health().succeeded();
  if (r.failures > 0) {
    ctx.health().wait_end();
    r.failures = 0;
    if (!r.failing.empty())
      spdlog::info("resurrector: paging open executions again");
    r.failing.clear();
  }
  for (auto& row : page->rows) {
    // Its definition must stay loaded while this node runs.
    ctx.note_open_execution(row.workflow, row.workflow_version);
    using es = eventstore::execution_status;
    if (row.status == es::running) {
      // Checked here, not only in the actor, so that the damage is
      // reported once, as one list, and no actor is spawned for it.
      if (auto damage = damage_of(ctx, row.execution_id)) {
        ++r.damaged;
        ctx.note_damaged(row.execution_id);
        if (r.damaged_ids.size() < damaged_listed)
          r.damaged_ids.push_back(row.execution_id + " ("
                                  + eventstore::to_string(*damage) + ")");
        continue;
      }
      ++r.running;
      caf::anon_send(ctx.registry(), wake_atom::value, row.execution_id);
    } else if (row.status == es::sleeping) {
      ++r.sleeping;
    } else if (row.status == es::awaiting_approval) {
      ++r.awaiting;
    }
  }
  r.token = page->next_page_token;
  if (r.token.empty()) return paged::done;
  self->send(self, tick_atom::value);
  return paged::more;
}

} // namespace

caf::actor spawn_resurrector(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(
    [](caf::event_based_actor* self, context_ptr ctx) -> caf::behavior {
      auto r = std::make_shared<resurrection>();
      self->send(self, tick_atom::value);
      return {
        [=](tick_atom) {
          auto state = resurrect_page_of(self, *ctx, *r);
          if (state == paged::more) return;
          if (state == paged::fatal) {
            self->quit();
            return;
          }
          auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - r->started);
          if (r->damaged > 0)
            spdlog::error("resurrector: the store is damaged: {} running "
                          "execution(s) cannot be read back and are set "
                          "aside (not resumed, not marked failed): {}; "
                          "restore the store from a backup to resume them",
                          r->damaged, name_damaged(*r));
          spdlog::info("resurrector: {} running respawned, {} sleeping and {} "
                       "awaiting approval left passive, {} damaged set "
                       "aside, in {} ms",
                       r->running, r->sleeping, r->awaiting, r->damaged,
                       took.count());
          ctx->note_resurrection_done(took);
          self->quit();
        },
      };
    },
    std::move(ctx));
}

} // namespace cerebelum::actors
