#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

namespace cerebelum::actors {

/// What a node needs to start.
struct node_config {
  /// Directory of the embedded store and the node's lock; must exist.
  std::filesystem::path data_dir;
};

/// Registers every message type a node exchanges (supervision included) in
/// `cfg`. Call it before creating the `caf::actor_system`.
void add_node_message_types(caf::actor_system_config& cfg);

/// A running node: the root of its supervision tree.
///
/// ```
/// node_supervisor (one_for_one)
///  +-- data_dir_lock   permanent   exclusive lock of the data directory
/// ```
///
/// Children of later issues (store writer, scheduler, executions
/// supervisor, ...) join this tree; see docs/ARCHITECTURE.md.
class node {
 public:
  /// Called once if the tree terminates on its own (escalation past the
  /// root's restart intensity), with the root's exit reason. Runs on a CAF
  /// thread: keep it short (e.g. wake the main thread).
  using on_down_function = std::function<void(const caf::error& reason)>;

  /// Starts the supervision tree and blocks until every child is up. Never
  /// call it inside an actor.
  static caf::expected<node> start(caf::actor_system& sys,
                                   const node_config& cfg,
                                   on_down_function on_down = {});

  /// Stops the tree gracefully: children in reverse start order, each by its
  /// shutdown policy. Returns false if the root did not terminate within
  /// `timeout`.
  bool stop(std::chrono::milliseconds timeout);

  /// The root supervisor.
  const caf::actor& root() const {
    return root_;
  }

 private:
  node(caf::actor_system& sys, caf::actor root, caf::actor watcher,
       std::shared_ptr<std::atomic<bool>> stopping);

  caf::actor_system* sys_;
  caf::actor root_;
  /// Monitors the root; reports a termination that `stop` did not cause.
  caf::actor watcher_;
  /// Set by `stop` so that the watcher stays quiet about the exit.
  std::shared_ptr<std::atomic<bool>> stopping_;
};

} // namespace cerebelum::actors
