#pragma once

#include <string>

namespace cerebelum::cli {

/// Configures spdlog's default logger for a command-line program: timestamps,
/// level, logger name, to stderr so that stdout stays for results (`--json`).
/// Returns false and leaves the level unchanged when `level` is not a spdlog
/// level name.
[[nodiscard]] bool setup_logging(const std::string& level);

} // namespace cerebelum::cli
