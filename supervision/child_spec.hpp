#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>

namespace cerebelum::supervision {

/// When a terminated child is restarted (OTP's `restart`).
enum class restart_type : uint8_t {
  /// Always restarted.
  permanent,
  /// Restarted only after an abnormal exit (see `is_normal_exit`).
  transient,
  /// Never restarted; removed from the supervisor when it exits.
  temporary,
};

/// Whether a child is a worker or a supervisor (OTP's `type`).
enum class child_type : uint8_t {
  /// Any actor that is not a supervisor.
  worker,
  /// A supervisor started with `spawn_supervisor`; its start waits for the
  /// nested supervisor to start all of its children.
  supervisor,
};

/// How a supervisor stops a child (OTP's `shutdown`).
struct shutdown_policy {
  /// The three OTP policies.
  enum class kind : uint8_t {
    /// Kill at once (`exit_reason::kill`).
    brutal_kill,
    /// Send `exit_reason::user_shutdown`, kill after `timeout`.
    timeout,
    /// Send `exit_reason::user_shutdown` and wait forever.
    infinity,
  };

  kind what = kind::timeout;

  /// Grace period of `kind::timeout`; must not be negative.
  std::chrono::milliseconds timeout{5000};
};

/// Returns the `brutal_kill` policy.
inline shutdown_policy brutal_kill() {
  return {shutdown_policy::kind::brutal_kill, std::chrono::milliseconds{0}};
}

/// Returns the `timeout(ms)` policy: graceful exit, then kill after `ms`.
inline shutdown_policy shutdown_timeout(std::chrono::milliseconds ms) {
  return {shutdown_policy::kind::timeout, ms};
}

/// Returns the `infinity` policy: graceful exit, wait forever.
inline shutdown_policy infinity() {
  return {shutdown_policy::kind::infinity, std::chrono::milliseconds{0}};
}

/// Creates (spawns) a child and returns its handle. Called inside the
/// supervisor actor: it must not block. `args` is empty for static children
/// and the `start_child` arguments for simple_one_for_one children. Returning
/// an invalid handle means OTP's `ignore`: no process, no error.
using start_function = std::function<caf::expected<caf::actor>(
  caf::actor_system& sys, const caf::message& args)>;

/// Describes one child (OTP's child_spec).
struct child_spec {
  /// Unique among the children of a supervisor; must not be empty.
  std::string id;

  /// Spawns the child; mandatory.
  start_function start;

  /// When to restart the child; defaults to permanent.
  restart_type restart = restart_type::permanent;

  /// How to stop the child; when empty, 5000 ms for a worker and infinity
  /// for a supervisor (as OTP).
  std::optional<shutdown_policy> shutdown;

  /// Worker or supervisor; defaults to worker.
  child_type type = child_type::worker;

  /// Returns `shutdown` or the OTP default for `type`.
  shutdown_policy effective_shutdown() const {
    if (shutdown) return *shutdown;
    return type == child_type::supervisor
             ? infinity()
             : shutdown_timeout(std::chrono::milliseconds{5000});
  }
};

/// How a supervisor reacts to a child that must be restarted.
enum class restart_strategy : uint8_t {
  /// Restart only that child.
  one_for_one,
  /// Stop all other children (reverse order), then restart all (in order).
  one_for_all,
  /// Stop the children started after it (reverse order), then restart it
  /// and them (in order).
  rest_for_one,
  /// Dynamic children of one spec, started with `start_child(args)`.
  simple_one_for_one,
};

/// The clock used for restart intensity; tests inject their own.
using clock_function = std::function<std::chrono::steady_clock::time_point()>;

/// Supervisor flags (OTP's sup_flags).
struct supervisor_flags {
  restart_strategy strategy = restart_strategy::one_for_one;

  /// Maximum number of restarts within `period`; must not be negative.
  int intensity = 1;

  /// Sliding window of the restart intensity; must be positive.
  std::chrono::milliseconds period = std::chrono::seconds{5};

  /// Time source for `period`; empty means `std::chrono::steady_clock`.
  clock_function clock;
};

/// Everything a supervisor needs to start.
struct supervisor_config {
  /// Name used in log lines; may be empty.
  std::string name;

  supervisor_flags flags;

  /// Children in start order; exactly one template for simple_one_for_one.
  std::vector<child_spec> children;
};

/// Checks one child spec; returns a named `errc` error or none.
caf::error validate(const child_spec& spec);

/// Checks flags and all child specs (including duplicate ids).
caf::error validate(const supervisor_config& cfg);

/// Returns whether CAF exit reason `reason` is a normal exit in OTP terms:
/// no error, `exit_reason::normal` or `exit_reason::user_shutdown` (OTP's
/// `normal`, `shutdown` and `{shutdown, _}`). Everything else is abnormal.
bool is_normal_exit(const caf::error& reason);

/// Returns "permanent", "transient" or "temporary".
std::string to_string(restart_type x);

/// Returns the strategy name as OTP spells it.
std::string to_string(restart_strategy x);

} // namespace cerebelum::supervision

// A child_spec holds a std::function: it travels in local messages only.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::supervision::child_spec)
