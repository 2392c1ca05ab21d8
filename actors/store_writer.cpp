#include "actors/store_writer.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/errc.hpp"
#include "actors/messages.hpp"
#include "eventstore/codec.hpp"
#include "eventstore/pg_store.hpp"
#include "eventstore/sqlite_store.hpp"

namespace cerebelum::actors {

caf::expected<std::shared_ptr<eventstore::event_store>>
open_store(const std::string& store, const std::filesystem::path& data_dir,
           eventstore::sqlite_open_check check,
           const eventstore::store_limits& limits) {
  auto fail = [&](const eventstore::error& err) {
    return make_error(
      is_store_damage(err) ? errc::store_damaged : errc::unavailable,
      "cannot open the store " + (store.empty() ? "sqlite" : store) + ": "
        + eventstore::to_string(err));
  };
  if (store.empty() || store == "sqlite") {
    eventstore::sqlite_options opts;
    opts.data_dir = data_dir.string();
    opts.open_check = check;
    opts.limits = limits;
    auto res = eventstore::open_sqlite_store(opts);
    if (!res) return fail(res.err());
    return std::move(*res);
  }
  if (store.rfind("postgresql://", 0) == 0 || store.rfind("postgres://", 0) == 0
      || store.find("host=") != std::string::npos
      || store.find("dbname=") != std::string::npos) {
    eventstore::pg_options opts;
    opts.conninfo = store;
    opts.limits = limits;
    auto res = eventstore::open_pg_store(opts);
    if (!res) return fail(res.err());
    return std::move(*res);
  }
  return make_error(errc::invalid_argument,
                    "unknown store '" + store
                      + "': use sqlite, postgresql://... or a libpq string");
}

caf::expected<caf::actor>
spawn_store_writer(caf::actor_system& sys, context_ptr ctx, std::string store,
                   std::filesystem::path data_dir,
                   eventstore::sqlite_open_check check, store_wrapper wrap) {
  if (!ctx->has_store()) {
    auto opened = open_store(store, data_dir, check,
                             ctx->options().store_limits);
    if (!opened) return std::move(opened.error());
    ctx->attach_store(wrap ? wrap(std::move(*opened)) : std::move(*opened));
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

} // namespace cerebelum::actors
