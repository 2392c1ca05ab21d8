#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cerebelum::actors {

/// A native step (`call` in a workflow): takes the step's evaluated input
/// and returns its result. Throwing fails the attempt: a `step_failure`
/// carries its kind and retryable flag; any other exception is a failure of
/// kind "exception", retryable.
using native_function = std::function<nlohmann::json(const nlohmann::json&)>;

/// What a native function throws to fail with a specific error kind.
struct step_failure : std::runtime_error {
  step_failure(std::string kind, const std::string& message,
               bool retryable = true)
    : std::runtime_error(message), kind(std::move(kind)), retryable(retryable) {
    // nop
  }
  std::string kind;
  bool retryable;
};

/// Where the engine runs a native function.
enum class run_on {
  /// The node's call pool (the default): the function may block (I/O,
  /// locks, sleeps) without holding up other executions.
  pool,
  /// The execution's own actor, at once after the commit that scheduled
  /// the attempt: for functions that only compute, in microseconds, and
  /// never block. It saves two thread hand-offs per step; a slow one holds
  /// up the executions that share its thread. Its step's timeout is checked
  /// when it returns: a result that took longer is dropped and the step
  /// fails by its timeout, as a pool call's late result would.
  actor,
};

/// A registered native function and where it runs.
struct registered_function {
  native_function fn;
  run_on where = run_on::pool;
};

/// The native functions a node can run, by name (e.g. "orders.validate").
/// Filled before the node starts; read concurrently afterwards.
class function_registry {
 public:
  /// Adds or replaces `name`.
  void add(const std::string& name, native_function fn,
           run_on where = run_on::pool) {
    auto entry = std::make_shared<const registered_function>(
      registered_function{std::move(fn), where});
    std::lock_guard<std::mutex> guard{mtx_};
    functions_[name] = std::move(entry);
  }

  /// Returns the function `name`, if registered (shared: a call does not
  /// copy it).
  std::shared_ptr<const registered_function>
  find(const std::string& name) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = functions_.find(name);
    if (i == functions_.end()) return nullptr;
    return i->second;
  }

  /// Registered names, sorted.
  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::string> result;
    for (auto& [name, fn] : functions_)
      result.push_back(name);
    return result;
  }

 private:
  mutable std::mutex mtx_;
  std::map<std::string, std::shared_ptr<const registered_function>> functions_;
};

} // namespace cerebelum::actors
