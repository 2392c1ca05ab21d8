#pragma once

#include <filesystem>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

namespace cerebelum::actors {

/// Takes the exclusive lock of a node's data directory and spawns the worker
/// that owns it for as long as it lives. The lock is an advisory `flock` on
/// the directory itself, which no file operation inside it can defeat
/// (deleting `<dir>/LOCK` does not let a second node in); `<dir>/LOCK`
/// holds the owner's pid for operators and is `flock`ed too, as by earlier
/// releases. Two nodes on one data directory would both write the embedded
/// store; the second one fails to start instead, with
/// `errc::data_dir_locked` naming the holder's pid (read from /proc/locks,
/// else from LOCK). The kernel drops the lock when the process dies, so a
/// node killed with `kill -9` leaves no stale lock behind.
caf::expected<caf::actor> spawn_data_dir_lock(caf::actor_system& sys,
                                              const std::filesystem::path& dir);

} // namespace cerebelum::actors
