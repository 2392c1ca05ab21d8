#include "actors/services.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/errc.hpp"
#include "actors/messages.hpp"
#include "eventstore/pg_store.hpp"
#include "eventstore/sqlite_store.hpp"

namespace cerebelum::actors {

caf::expected<std::shared_ptr<eventstore::event_store>>
open_store(const std::string& store, const std::filesystem::path& data_dir) {
  auto fail = [&](const eventstore::error& err) {
    return make_error(errc::unavailable, "cannot open the store "
                                           + (store.empty() ? "sqlite" : store)
                                           + ": " + eventstore::to_string(err));
  };
  if (store.empty() || store == "sqlite") {
    eventstore::sqlite_options opts;
    opts.data_dir = data_dir.string();
    auto res = eventstore::open_sqlite_store(opts);
    if (!res) return fail(res.err());
    return std::move(*res);
  }
  if (store.rfind("postgresql://", 0) == 0 || store.rfind("postgres://", 0) == 0
      || store.find("host=") != std::string::npos
      || store.find("dbname=") != std::string::npos) {
    eventstore::pg_options opts;
    opts.conninfo = store;
    auto res = eventstore::open_pg_store(opts);
    if (!res) return fail(res.err());
    return std::move(*res);
  }
  return make_error(errc::invalid_argument,
                    "unknown store '" + store
                      + "': use sqlite, postgresql://... or a libpq string");
}

caf::expected<caf::actor> spawn_store_writer(caf::actor_system& sys,
                                             context_ptr ctx, std::string store,
                                             std::filesystem::path data_dir) {
  if (!ctx->has_store()) {
    auto opened = open_store(store, data_dir);
    if (!opened) return std::move(opened.error());
    ctx->attach_store(std::move(*opened));
  }
  // Arguments are passed to spawn, not captured: CAF 0.17 dereferences a
  // null argument tuple for argument-less function actors (UBSan flags it).
  return sys.spawn(
    [](caf::event_based_actor* self, context_ptr ctx) -> caf::behavior {
      self->attach_functor([ctx] {
        // Stopped last but the lock: drain the queue and commit it.
        ctx->close();
        spdlog::info("store writer closed: every queued append committed");
      });
      return {
        [ctx](stats_atom) {
          auto s = ctx->writer().stats();
          return std::make_tuple(s.groups, s.appends);
        },
      };
    },
    std::move(ctx));
}

namespace {

constexpr std::size_t resurrect_page = 2'000;

} // namespace

caf::actor spawn_resurrector(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(
    [](caf::event_based_actor* self, context_ptr ctx) -> caf::behavior {
      auto token = std::make_shared<std::string>();
      auto counts = std::make_shared<std::array<std::uint64_t, 3>>();
      auto started = std::chrono::steady_clock::now();
      self->send(self, tick_atom::value);
      return {
        [=](tick_atom) {
          auto page = ctx->store().open_executions(resurrect_page, *token);
          if (!page) {
            spdlog::error("resurrector: cannot page open executions: {}",
                          eventstore::to_string(page.err()));
            self->delayed_send(self, std::chrono::seconds{1}, tick_atom::value);
            return;
          }
          for (auto& row : page->rows) {
            using es = eventstore::execution_status;
            // Its definition must stay loaded while this node runs.
            ctx->note_open_execution(row.workflow, row.workflow_version);
            if (row.status == es::running) {
              ++(*counts)[0];
              caf::anon_send(ctx->engine(), wake_atom::value, row.execution_id);
            } else if (row.status == es::sleeping) {
              ++(*counts)[1];
            } else if (row.status == es::awaiting_approval) {
              ++(*counts)[2];
            }
          }
          *token = page->next_page_token;
          if (!token->empty()) {
            self->send(self, tick_atom::value);
            return;
          }
          auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
          spdlog::info("resurrector: {} running respawned, {} sleeping and {} "
                       "awaiting approval left passive, in {} ms",
                       (*counts)[0], (*counts)[1], (*counts)[2], took.count());
          ctx->note_resurrection_done(took);
          self->quit();
        },
      };
    },
    std::move(ctx));
}

} // namespace cerebelum::actors
