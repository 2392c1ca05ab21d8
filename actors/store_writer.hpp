#pragma once

// The store writer: it owns the node's store and group writer.

#include <filesystem>
#include <functional>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/engine_context.hpp"
#include "eventstore/sqlite_store.hpp"

namespace cerebelum::actors {

/// Decorates an opened store (see node_config::wrap_store).
using store_wrapper = std::function<std::shared_ptr<eventstore::event_store>(
  std::shared_ptr<eventstore::event_store>)>;

/// Opens the store named by `store` ("" or "sqlite": SQLite in `data_dir`,
/// verified at open as `check` says; "postgresql://..." or a libpq
/// "host=..." string: PostgreSQL). A damaged or lost store is
/// `errc::store_damaged`. The store refuses appends over `limits`.
caf::expected<std::shared_ptr<eventstore::event_store>>
open_store(const std::string& store, const std::filesystem::path& data_dir,
           eventstore::sqlite_open_check check
           = eventstore::sqlite_open_check::full,
           const eventstore::store_limits& limits = {});

/// Spawns the store writer: it owns the context's store and group writer
/// (opening the store on first start) and, when it stops, drains and
/// commits every queued append and closes the writer.
/// `wrap`, when set, decorates the opened store (a test's fault injection).
caf::expected<caf::actor>
spawn_store_writer(caf::actor_system& sys, context_ptr ctx, std::string store,
                   std::filesystem::path data_dir,
                   eventstore::sqlite_open_check check
                   = eventstore::sqlite_open_check::full,
                   store_wrapper wrap = {});

} // namespace cerebelum::actors
