#pragma once

#include <string>

namespace cerebelum::cli {

/// How log lines are written.
enum class log_format {
  /// `2026-12-06T20:50:34.853 info  [cerebelum] message`, colored on a
  /// terminal.
  text,
  /// One JSON object per line, for log collectors:
  /// `{"time":"2026-12-06T20:50:34.853Z","level":"info","logger":"cerebelum",
  /// "thread":1234,"message":"..."}` (time in UTC; the message escaped, an
  /// invalid UTF-8 byte replaced by U+FFFD).
  json,
};

/// Configures spdlog's default logger for a command-line program: timestamps,
/// level, logger name, to stderr so that stdout stays for results (`--json`).
/// Returns false and leaves the level unchanged when `level` is not a spdlog
/// level name.
[[nodiscard]] bool setup_logging(const std::string& level,
                                 log_format format = log_format::text);

} // namespace cerebelum::cli
