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

/// The native functions a node can run, by name (e.g. "orders.validate").
/// Filled before the node starts; read concurrently afterwards.
class function_registry {
 public:
  /// Adds or replaces `name`.
  void add(const std::string& name, native_function fn) {
    std::lock_guard<std::mutex> guard{mtx_};
    functions_[name] = std::move(fn);
  }

  /// Returns the function `name`, if registered.
  std::optional<native_function> find(const std::string& name) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = functions_.find(name);
    if (i == functions_.end()) return std::nullopt;
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
  std::map<std::string, native_function> functions_;
};

} // namespace cerebelum::actors
