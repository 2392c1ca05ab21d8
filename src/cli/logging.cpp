#include "src/cli/logging.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>

namespace cerebelum::cli {

namespace {

/// "2026-12-06T20:50:34.853Z".
std::string utc_time(spdlog::log_clock::time_point t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

/// One JSON object per log line (log_format::json).
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    nlohmann::json line{
      {"time", utc_time(msg.time)},
      {"level", std::string{spdlog::level::to_string_view(msg.level).data(),
                            spdlog::level::to_string_view(msg.level).size()}},
      {"logger", std::string{msg.logger_name.data(), msg.logger_name.size()}},
      {"thread", msg.thread_id},
      {"message", std::string{msg.payload.data(), msg.payload.size()}},
    };
    auto text = line.dump(-1, ' ', false,
                          nlohmann::json::error_handler_t::replace);
    text += '\n';
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

} // namespace

bool setup_logging(const std::string& level, log_format format) {
  auto lvl = spdlog::level::from_str(level);
  // from_str maps unknown names to `off`; only accept "off" when asked for.
  if (lvl == spdlog::level::off && level != "off") return false;
  std::shared_ptr<spdlog::logger> logger;
  if (format == log_format::json) {
    // No colors: a collector reads the bytes as they are.
    logger = spdlog::stderr_logger_mt("cerebelum");
    logger->set_formatter(std::make_unique<json_formatter>());
  } else {
    logger = spdlog::stderr_color_mt("cerebelum");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::info);
  return true;
}

} // namespace cerebelum::cli
