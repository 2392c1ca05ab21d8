#pragma once

// The task router: every open task (attempt of a remote `task` step) of the
// node in memory, per-queue ready lists, leases, long-polls waiting on
// in-memory signals. Recovered from the store's task rows at boot, kept up
// to date by the execution actors (`tasks_atom`, `refused_atom`). Outcomes
// of workers go to the engine (`outcome_atom`) and are acknowledged once
// committed. docs/worker-protocol.md describes the rules.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/engine_context.hpp"
#include "actors/task_api.hpp"

namespace cerebelum::actors {

/// Options of one queue.
struct queue_options {
  /// > 0: a task of an execution prefers the worker that ran the
  /// execution's previous task for this long, then goes to any worker.
  std::int64_t sticky_ms = 0;
  /// Tasks of this queue leased at once over all workers; 0 = no limit.
  std::uint32_t max_concurrency = 0;
};

struct router_options {
  /// Lease length of steps without a heartbeat timeout.
  std::chrono::milliseconds default_lease{30'000};
  /// Long-poll wait when the worker asks for 0.
  std::chrono::milliseconds default_poll_wait{30'000};
  /// Longest long-poll wait.
  std::chrono::milliseconds max_poll_wait{300'000};
  /// Heartbeat progress is recorded at most this often per attempt.
  std::chrono::milliseconds progress_interval{1'000};
  /// An outcome not committed within this time is answered `unavailable`
  /// (the worker may retry it; the lease is kept).
  std::chrono::milliseconds commit_timeout{30'000};
  /// Resolution of lease expiry, poll deadlines and sticky fallback.
  std::chrono::milliseconds tick{20};
  /// Options of queues by name; others get `defaults`.
  std::map<std::string, queue_options> queues;
  queue_options defaults;
};

/// Spawns the router; it loads every task row of the store (attached to
/// `ctx`) before it handles any message.
caf::actor spawn_task_router(caf::actor_system& sys, context_ptr ctx,
                             router_options opts);

/// The external attempt token given to workers for (execution, internal
/// token), and back. `parse` returns false on a malformed token.
std::string external_token(const std::string& execution_id,
                           const std::string& token);
bool parse_external_token(const std::string& external,
                          std::string& execution_id, std::string& token);

} // namespace cerebelum::actors
