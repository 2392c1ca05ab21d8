#pragma once

// A real `cerebelum node` with its CAF worker port open, and example C++
// workers (examples/caf_worker) as real processes, for the CAF worker tests.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/child_process.hpp"
#include "tests/support/scratch.hpp"

namespace cerebelum::test {

/// A node on a fresh data directory with gRPC and the CAF worker port.
class caf_node {
 public:
  /// Starts the node with `extra_args` after the usual ones.
  explicit caf_node(std::vector<std::string> extra_args = {});

  /// Runs `cerebelum --server <this node> args...`; returns (exit code,
  /// output).
  std::pair<int, std::string> cli(std::vector<std::string> args);

  /// `show ID --json` until its status is `status` or `timeout` passes.
  nlohmann::json wait_status(const std::string& id, const std::string& status,
                             std::chrono::milliseconds timeout);

  /// `show ID --history --json`'s history.
  nlohmann::json history(const std::string& id);

  child_process& process() {
    return *proc_;
  }

  const std::filesystem::path& data_dir() const {
    return dir_.path;
  }

  int grpc_port = 0;
  int caf_port = 0;

 private:
  temp_dir dir_;
  std::unique_ptr<child_process> proc_;
};

/// Starts examples/caf_worker's program as worker `id` against `node`,
/// registering examples/caf_worker/invoice.yaml, and waits until it is
/// registered.
std::unique_ptr<child_process> start_worker(caf_node& node,
                                            const std::string& id);

/// Starts the example worker as `id` against `node` with `extra_args`
/// (e.g. --token, --tls-ca), registering examples/caf_worker/invoice.yaml
/// when `with_workflow`; does not wait.
std::unique_ptr<child_process>
spawn_worker(caf_node& node, const std::string& id,
             std::vector<std::string> extra_args, bool with_workflow = true);

} // namespace cerebelum::test
