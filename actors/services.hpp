#pragma once

// The long-lived helpers of the node tree: the store writer and the
// resurrector.

#include <filesystem>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/engine_context.hpp"
#include "eventstore/sqlite_store.hpp"

namespace cerebelum::actors {

/// Opens the store named by `store` ("" or "sqlite": SQLite in `data_dir`,
/// verified at open as `check` says; "postgresql://..." or a libpq
/// "host=..." string: PostgreSQL). A damaged or lost store is
/// `errc::store_damaged`.
caf::expected<std::shared_ptr<eventstore::event_store>>
open_store(const std::string& store, const std::filesystem::path& data_dir,
           eventstore::sqlite_open_check check
           = eventstore::sqlite_open_check::full);

/// Spawns the store writer: it owns the context's store and group writer
/// (opening the store on first start) and, when it stops, drains and
/// commits every queued append and closes the writer.
caf::expected<caf::actor>
spawn_store_writer(caf::actor_system& sys, context_ptr ctx, std::string store,
                   std::filesystem::path data_dir,
                   eventstore::sqlite_open_check check
                   = eventstore::sqlite_open_check::full);

/// Spawns the resurrector: pages through every open execution of the index
/// once, respawns the running ones (their in-flight steps are re-dispatched
/// as new attempts from resume_commands) and leaves sleeping and waiting ones
/// passive (the scheduler pages their timers from the store), then exits
/// normally. A running execution whose history cannot be read back (damaged
/// store) is set aside, not respawned: one error line lists them all
/// (bounded) with their count. An index that cannot be read is fatal
/// (`engine_context::fatal`): the node stops, reporting it once.
caf::actor spawn_resurrector(caf::actor_system& sys, context_ptr ctx);

} // namespace cerebelum::actors
