#pragma once

// An in-process node on a temporary data directory with native test
// functions and the test workflows of workflows.cpp.

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

#include "actors/engine_api.hpp"
#include "actors/node.hpp"

namespace cerebelum::actors::test {

/// Writes the test workflows into `dir`.
void write_workflows(const std::filesystem::path& dir);

/// Registers t.inc (n+1), t.double (n*2), t.add3 (n+3), t.flaky (fails
/// retryably while `flaky_failures` > 0).
std::shared_ptr<function_registry> test_functions();

/// Failures t.flaky still returns.
extern std::atomic<int> flaky_failures;

/// The connection string of the PostgreSQL test server, or "".
std::string pg_conninfo();

/// How many events of kind `which` the history of `id` holds (REQUIREs
/// that the history can be read).
int count_of(engine_api& api, const std::string& id,
             events::Event::PayloadCase which);

class engine_fixture {
 public:
  /// `store`: "" (SQLite) or a PostgreSQL connection string.
  explicit engine_fixture(std::string store = {});
  ~engine_fixture();

  /// Starts the node (again) on the same data directory.
  void start();
  /// Stops the node gracefully.
  void stop();

  engine_api& api() {
    return *node_->api();
  }
  actors::node& node() {
    return *node_;
  }
  node_config& config() {
    return cfg_;
  }
  const std::filesystem::path& data_dir() const {
    return dir_;
  }
  caf::actor_system& system();

  /// Whether `id` has a live actor right now.
  bool is_live(const std::string& id);

  /// Waits (bounded) until `id` has no live actor; false on timeout.
  bool wait_passivated(const std::string& id);

  /// Waits (bounded) until `id` shows status `st`; false on timeout.
  bool wait_status(const std::string& id, eventstore::execution_status st);

  /// Starts `workflow` with input {"i": i} and the given id.
  execution_view start(const std::string& workflow, int i,
                       const std::string& id = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::filesystem::path dir_;
  node_config cfg_;
  std::optional<actors::node> node_;
};

} // namespace cerebelum::actors::test
