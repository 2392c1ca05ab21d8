#pragma once

// A real `cerebelum node` process on free ports and a temporary data
// directory, and a runner for the `cerebelum` CLI, for integration tests.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/child_process.hpp"
#include "tests/support/scratch.hpp"

namespace cerebelum::test {

/// What a CLI run printed and returned.
struct cli_result {
  int code = -1;
  std::string output;
  /// The output parsed as JSON (null when it is not JSON).
  nlohmann::json json() const;
};

/// A node with the example workflows, the demo functions, gRPC and HTTP.
class node_process {
 public:
  /// Starts a node on `data_dir` (a fresh one when empty) and `store` (empty:
  /// the embedded SQLite) with the workflows of `workflows` (empty: the
  /// test's CEREBELUM_WORKFLOWS), `extra` options of `cerebelum node`
  /// appended, and waits until it is ready.
  explicit node_process(std::filesystem::path data_dir = {},
                        std::string store = {},
                        std::filesystem::path workflows = {},
                        std::vector<std::string> extra = {});

  /// Runs `cerebelum --server <this node> args...`.
  cli_result cli(std::vector<std::string> args);

  /// Polls `show ID --json` until its status is `status`; returns the last
  /// JSON seen.
  nlohmann::json wait_status(const std::string& id, const std::string& status,
                             std::chrono::milliseconds timeout);

  /// Reads pending node output so that its pipe never fills.
  void drain();

  child_process& process() {
    return *proc_;
  }

  const std::filesystem::path& data_dir() const {
    return data_dir_;
  }

  int grpc_port = 0;
  int http_port = 0;

 private:
  std::unique_ptr<temp_dir> own_dir_;
  std::filesystem::path data_dir_;
  std::unique_ptr<child_process> proc_;
};

/// Runs the CLI binary with `args` and waits for it.
cli_result run_cli(std::vector<std::string> args);

} // namespace cerebelum::test
