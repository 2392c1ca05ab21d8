#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace cerebelum::supervision {

/// Error codes of the supervision library. Every error a supervisor returns
/// or exits with carries the category `error_category` ("supervise").
enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// A child spec has an empty id.
  empty_child_id,
  /// Two child specs of one supervisor share an id.
  duplicate_child_id,
  /// A child spec has no start function.
  missing_start_function,
  /// A child spec's restart value is not permanent, transient or temporary.
  invalid_restart_type,
  /// A child spec's shutdown is unknown or has a negative timeout.
  invalid_shutdown,
  /// A child spec's type is not worker or supervisor.
  invalid_child_type,
  /// The supervisor flags name an unknown strategy.
  invalid_strategy,
  /// The supervisor flags carry a negative intensity.
  invalid_intensity,
  /// The supervisor flags carry a period that is not positive.
  invalid_period,
  /// A simple_one_for_one supervisor needs exactly one child spec.
  invalid_simple_spec,
  /// A start function failed; the context names the child and the reason.
  failed_to_start_child,
  /// The operation needs a child without a process, but it is running.
  running,
  /// The child is waiting for a restart attempt after a failed restart.
  restarting,
  /// No child has this id (or this handle).
  not_found,
  /// A child spec with this id exists but has no process.
  already_present,
  /// A child spec with this id exists and its process is running.
  already_started,
  /// The operation is not available on a simple_one_for_one supervisor.
  simple_one_for_one,
  /// The operation needs a simple_one_for_one supervisor.
  not_simple_one_for_one,
  /// More than `intensity` restarts happened within `period`: the supervisor
  /// stopped all children and exits with this reason (escalation).
  reached_max_restart_intensity,
};

/// The CAF error category of `errc`, at most 10 characters.
constexpr caf::atom_value error_category = caf::atom("supervise");

/// Returns the enumerator name of `x`, e.g. "duplicate_child_id".
/// @relates errc
std::string to_string(errc x);

/// Wraps `x` into a `caf::error` of category `error_category`.
/// @relates errc
caf::error make_error(errc x);

/// Wraps `x` and a human-readable context into a `caf::error`.
/// @relates errc
caf::error make_error(errc x, std::string context);

/// Returns whether `err` is the supervision error `x`.
bool is(const caf::error& err, errc x);

} // namespace cerebelum::supervision
