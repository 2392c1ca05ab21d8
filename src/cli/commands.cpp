#include "src/cli/commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace cerebelum::cli {

int command_set::run_parsed() const {
  for (auto& [cmd, run] : commands_)
    if (cmd->parsed()) return run();
  return -1;
}

int usage_error(const std::string& message) {
  std::cerr << message << '\n';
  return 2;
}

} // namespace cerebelum::cli
