#pragma once

// What the node's code logs while a test looks: a sink that keeps every
// line, and the default logger pointed at it for a scope (spdlog's free
// functions, which the node's threads log through, write to the default
// logger).

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cerebelum::test {

/// Keeps the lines logged to it.
class log_capture : public spdlog::sinks::base_sink<std::mutex> {
 public:
  /// The lines logged so far that contain `needle`.
  std::size_t count(const std::string& needle) {
    std::lock_guard<std::mutex> lock{mutex_};
    std::size_t n = 0;
    for (const auto& line : lines_)
      if (line.find(needle) != std::string::npos) ++n;
    return n;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }

  void flush_() override {
    // nop
  }

 private:
  std::vector<std::string> lines_;
};

/// Makes `sink` the default logger's sink until destroyed (install it
/// before the threads whose lines the test counts start, and let it end
/// after they stopped).
class capture_log {
 public:
  explicit capture_log(std::shared_ptr<log_capture> sink)
    : before_(spdlog::default_logger()) {
    spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("capture", std::move(sink)));
  }
  ~capture_log() {
    spdlog::set_default_logger(before_);
  }
  capture_log(const capture_log&) = delete;
  capture_log& operator=(const capture_log&) = delete;

 private:
  std::shared_ptr<spdlog::logger> before_;
};

} // namespace cerebelum::test
