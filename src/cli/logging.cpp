#include "src/cli/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace cerebelum::cli {

bool setup_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  // from_str maps unknown names to `off`; only accept "off" when asked for.
  if (lvl == spdlog::level::off && level != "off") return false;
  auto logger = spdlog::stderr_color_mt("cerebelum");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::info);
  return true;
}

} // namespace cerebelum::cli
