#pragma once

// Reading the Prometheus text the node serves (GET /metrics) in tests.

#include <sstream>
#include <string>

namespace cerebelum::test {

/// The value of `series` (its name and labels exactly as printed, labels in
/// name order) in the Prometheus text `text`; -1 when it is not there.
inline double metric_value(const std::string& text, const std::string& series) {
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

} // namespace cerebelum::test
