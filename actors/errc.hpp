#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace cerebelum::actors {

/// Error codes of the engine's actors and of the node. Errors carry the
/// category `error_category` ("node").
enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// The data directory cannot be created, opened or written.
  data_dir_unusable,
  /// Another process holds the data directory's lock (another node runs on
  /// it); the context names the directory and the holder's pid.
  data_dir_locked,
};

/// The CAF error category of `errc`, at most 10 characters.
constexpr caf::atom_value error_category = caf::atom("node");

/// Returns the enumerator name of `x`, e.g. "data_dir_locked".
std::string to_string(errc x);

/// Wraps `x` and a human-readable context into a `caf::error`.
caf::error make_error(errc x, std::string context);

} // namespace cerebelum::actors
