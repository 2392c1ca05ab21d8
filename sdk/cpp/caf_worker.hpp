#pragma once

// A C++ worker that joins a Cerebelum node over CAF networking and runs the
// `task` steps of the queues it serves:
//
// ```cpp
// cerebelum::worker::caf_worker w{"127.0.0.1", 4300, "charger-1",
// {"payments"}}; w.on("payments.charge", [](const json& input, task_context&
// ctx) -> json {
//   if (input.at("amount") < 0)
//     throw task_error{"invalid_amount", "negative amount", false};
//   return {{"charged", input.at("amount")}};
// });
// w.run(); // until stop() (another thread, e.g. a signal handler thread)
// ```
//
// The node pushes leased tasks (at most `max_in_flight` at once). Handlers
// run on the worker's own threads, never on CAF's, so a long handler starves
// nothing: heartbeats that extend the lease keep going while it runs. A
// handler's return value is the step's result; a thrown `task_error` is a
// failure of its kind (retryable or not); any other exception is a retryable
// failure of kind `handler_exception`. See docs/caf-workers.md.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wire/wire.hpp"

namespace cerebelum::worker {

using json = nlohmann::json;

/// A failure a handler reports by throwing it.
class task_error : public std::runtime_error {
 public:
  /// `kind` is what diverge rules match (e.g. "card_declined"); a
  /// non-retryable failure skips the retry policy.
  task_error(std::string kind, const std::string& message,
             bool retryable = true);

  const std::string& kind() const noexcept {
    return kind_;
  }

  bool retryable() const noexcept {
    return retryable_;
  }

 private:
  std::string kind_;
  bool retryable_;
};

/// Thrown by `task_context::sleep` and `wait_for_approval` to end the
/// attempt with a wait. Not a `std::exception`: a handler that catches
/// everything (`catch (...)`) must rethrow it.
struct suspend_request {
  std::string wait_key;
  std::int64_t sleep_ms = 0;
  bool approval = false;
  std::string approval_data_json;
  std::int64_t approval_timeout_ms = 0;
};

/// What a handler knows about the attempt it runs, and its channel back.
/// Safe to use from the handler's thread.
class task_context {
 public:
  struct shared_state;

  explicit task_context(std::shared_ptr<shared_state> st);

  /// The leased attempt as the node sent it (proto/worker.proto).
  const Task& task() const;

  const std::string& execution_id() const {
    return task().execution_id();
  }
  const std::string& step() const {
    return task().step();
  }
  std::uint32_t attempt() const {
    return task().attempt();
  }
  /// The same for every attempt of this step: use it for side effects.
  const std::string& idempotency_key() const {
    return task().idempotency_key();
  }

  /// Sends a heartbeat now with `details` (a JSON object, recorded as the
  /// attempt's progress). Heartbeats without details are sent on their own
  /// while the handler runs.
  void heartbeat(const json& details);

  /// A durable sleep inside the step. The first time, it ends the attempt
  /// with a suspend request (by throwing `suspend_request`: the code after
  /// it does not run); when the sleep is over the node runs the step again
  /// as a new attempt, and the same call returns at once. `wait_key` names
  /// the wait, unique within the step.
  void sleep(std::chrono::milliseconds duration, const std::string& wait_key);

  /// Waits for an operator's approval showing `data`, as `sleep` does;
  /// returns the approval's data once granted (a rejection or a timeout
  /// fails the step without running it again). `timeout` 0: forever.
  json wait_for_approval(const json& data, const std::string& wait_key,
                         std::chrono::milliseconds timeout = {});

  /// True once the node asked to stop this attempt (the execution is being
  /// cancelled), the lease was lost, or the node is unreachable: whatever
  /// the handler returns then is not recorded.
  bool cancel_requested() const;

 private:
  std::shared_ptr<shared_state> st_;
};

/// Runs one attempt: the task's input in, the step's result out.
using task_handler = std::function<json(const json& input, task_context& ctx)>;

/// Settings of a worker.
struct worker_options {
  /// The node's CAF port (`cerebelum node --caf-port`).
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  /// Unique per worker process.
  std::string worker_id;
  std::vector<std::string> queues;
  /// Tasks run at once (threads); at least 1.
  std::uint32_t max_in_flight = 1;
  /// Workflow definitions registered with the node when the worker joins
  /// (see `caf_worker::add_workflow`).
  std::vector<WorkflowSource> workflows;
  /// Heartbeat period while a handler runs; 0 = a third of the task's
  /// heartbeat timeout (or of the lease when it has none).
  std::chrono::milliseconds heartbeat_interval{0};
  /// How long `connect` keeps trying to reach the node.
  std::chrono::milliseconds connect_timeout{10'000};
  /// The worker's token on a node with `--auth token` (`cerebelum token
  /// create --role worker`); sent in the registration only. Empty on a node
  /// with `--tls-client-ca`: the worker is the principal bound to the
  /// subject of `tls_cert` (`token create --cert-subject`).
  std::string token;
  /// TLS: a CA file (PEM) turns it on; the node's certificate must chain to
  /// it and name `host` (or `tls_server_name` when set). `tls_cert` and
  /// `tls_key` are the worker's client certificate, for a node with
  /// `--tls-client-ca`.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
};

/// A worker process's connection to one node. Not copyable; `stop` may be
/// called from any thread.
class caf_worker {
 public:
  caf_worker(std::string host, std::uint16_t port, std::string worker_id,
             std::vector<std::string> queues);

  explicit caf_worker(worker_options opts);

  caf_worker(const caf_worker&) = delete;
  caf_worker& operator=(const caf_worker&) = delete;

  ~caf_worker();

  /// Runs `handler` for tasks whose `task:` target is `task_type`. A task
  /// of a type without a handler fails with kind `unknown_task_type`
  /// (not retryable). Call before `run`.
  caf_worker& on(std::string task_type, task_handler handler);

  /// Tasks run at once (at least 1). Call before `run`.
  caf_worker& max_in_flight(std::uint32_t n);

  /// Registers a workflow definition with the node when the worker joins
  /// (`format`: "yaml" or "json"). Call before `run`.
  caf_worker& add_workflow(std::string name, std::string format,
                           std::string text);

  /// Reads a *.yaml, *.yml or *.json file for `add_workflow`; throws
  /// `std::runtime_error` naming the file when it cannot be read.
  caf_worker& add_workflow_file(const std::filesystem::path& file);

  /// Connects, registers and runs tasks until `stop` (then returns once the
  /// running handlers finished and their results were acknowledged). Throws
  /// `std::runtime_error` when the node cannot be reached, refuses the
  /// registration (the message is the node's, e.g. an invalid workflow) or
  /// the connection is lost.
  void run();

  /// Asks `run` to finish gracefully: no new tasks are accepted, running
  /// handlers finish and report, then the worker unregisters. Thread-safe;
  /// before `run` it makes `run` return at once.
  void stop();

  /// Tasks completed (results acknowledged by the node) so far.
  std::uint64_t completed() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace cerebelum::worker
