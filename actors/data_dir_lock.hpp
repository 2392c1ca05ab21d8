#pragma once

#include <filesystem>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

namespace cerebelum::actors {

/// Takes the exclusive lock of a node's data directory (`<dir>/LOCK`, an
/// advisory `flock` holding the owner's pid) and spawns the worker that owns
/// it for as long as it lives. Two nodes on one data directory would both
/// write the embedded store; the second one fails to start instead, with
/// `errc::data_dir_locked` naming the holder's pid. The kernel drops the lock
/// when the process dies, so a node killed with `kill -9` leaves no stale
/// lock behind.
caf::expected<caf::actor> spawn_data_dir_lock(caf::actor_system& sys,
                                              const std::filesystem::path& dir);

} // namespace cerebelum::actors
