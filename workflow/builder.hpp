#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflow/definition.hpp"

namespace cerebelum::workflow {

/// Which failures a diverge rule matches.
struct error_match {
  /// Error kind; empty or "*" for any.
  std::string kind{};
  /// Substring of the message; empty for any.
  std::string message_contains{};
  /// Extra condition over `error`; empty for none.
  std::string condition{};
};

/// Builds one step. Expressions and durations are parsed as they are given;
/// the first problem is reported by `workflow_builder::build`.
///
/// ~~~
/// auto s = step_builder::call("validate", "orders.validate")
///            .input("order", "input.order")
///            .retry({.max_attempts = 5})
///            .retry_on({.kind = "timeout"});
/// ~~~
class step_builder {
 public:
  static step_builder call(std::string name, std::string function);
  static step_builder task(std::string name, std::string task_type,
                           std::string queue);
  static step_builder set(std::string name);
  static step_builder sleep(std::string name, std::string_view duration);
  static step_builder sleep_expr(std::string name, std::string_view expr);
  static step_builder approval(std::string name);
  static step_builder log(std::string name, std::string_view message,
                          std::string level = "info");
  static step_builder fail(std::string name, std::string kind,
                           std::string_view message = {});

  /// Turns a call or task into a map over the list `over`.
  step_builder& map_over(std::string_view over, std::uint32_t concurrency = 0);
  /// One input field (call/task/map), value (set) or datum (approval).
  step_builder& input(std::string key, std::string_view expr);
  /// The whole input as one expression.
  step_builder& input(std::string_view expr);
  /// Alias of `input` that reads better on `set` steps.
  step_builder& value(std::string key, std::string_view expr);
  step_builder& queue(std::string queue);
  step_builder& retry(retry_policy policy);
  step_builder& timeout(std::string_view duration);
  step_builder& heartbeat_timeout(std::string_view duration);
  step_builder& approval_timeout(std::string_view duration);
  step_builder& idempotency_key(std::string_view text_template);

  step_builder& retry_on(error_match match,
                         std::optional<retry_policy> policy = {});
  step_builder& goto_on(error_match match, std::string target);
  step_builder& fail_on(error_match match);
  step_builder& continue_on(error_match match);

 private:
  friend class workflow_builder;
  explicit step_builder(std::string name, step_kind kind);
  void note(const std::string& what, const diagnostic& d);
  std::int64_t parse_ms(std::string_view what, std::string_view text);
  step_builder& add_rule(error_match match, diverge_rule rule);

  step step_;
  std::optional<diagnostic> error_;
};

/// Builds a definition equal to the one the YAML loader would produce for
/// the same workflow (same canonical form, same version hash).
class workflow_builder {
 public:
  explicit workflow_builder(std::string name, std::string version = "1");

  workflow_builder& max_iterations(std::uint32_t n);
  workflow_builder& input_schema(json schema);
  /// Adds a single-step stage.
  workflow_builder& then(step_builder step);
  /// Adds a parallel group named `name`.
  workflow_builder& parallel(std::string name, std::vector<step_builder> steps);
  /// Adds a branch rule to the last stage.
  workflow_builder& branch(std::string_view condition, std::string target);
  /// Adds an unconditional branch rule to the last stage.
  workflow_builder& otherwise(std::string target);
  /// One field of the execution's result.
  workflow_builder& output(std::string key, std::string_view expr);

  /// Validates and returns the definition.
  [[nodiscard]] result<definition> build() const;

 private:
  void note(const std::string& step, std::string msg, int column = 0);
  void add_step(definition& d, step_builder& s, stage& st);

  definition def_;
  std::optional<diagnostic> error_;
};

} // namespace cerebelum::workflow
