#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "workflow/expression.hpp"

namespace cerebelum::workflow {

/// What a step does.
enum class step_kind {
  /// Run by a worker polling a named task queue.
  task,
  /// A native C++ function registered with the engine.
  call,
  /// Compute values from expressions; resolved by the decider.
  set,
  /// Wait for a duration (a durable timer).
  sleep,
  /// Wait for an operator's decision.
  approval,
  /// Record an annotation; resolved by the decider.
  log,
  /// Raise an error of a given kind; resolved by the decider.
  fail,
  /// Run one child (a call or a task) per element of a list.
  map,
};

/// Spelling used in files, events and diagnostics.
[[nodiscard]] const char* to_string(step_kind kind);

/// How often and how fast a failed step is attempted again. Delays are
/// exact: `initial * coefficient^(attempt-1)`, capped at `max_interval`.
struct retry_policy {
  /// Total attempts including the first; 1 means "never retry".
  std::uint32_t max_attempts = 3;
  std::int64_t initial_interval_ms = 1000;
  double backoff_coefficient = 2.0;
  /// 0 means uncapped.
  std::int64_t max_interval_ms = 0;
  /// Off by default. When on, the delay is scaled by a factor in [0.5, 1]
  /// derived from the attempt token, so it is still deterministic.
  bool jitter = false;

  /// Delay before the attempt after `failed_attempt` (1-based).
  [[nodiscard]] std::int64_t delay_ms(std::uint32_t failed_attempt,
                                      std::string_view token = {}) const;
};

/// A JSON value built from expressions: either one expression for the
/// whole value or an object whose fields are expressions.
struct value_template {
  std::optional<expression> whole;
  std::vector<std::pair<std::string, expression>> fields;

  [[nodiscard]] bool empty() const noexcept {
    return !whole && fields.empty();
  }

  /// Evaluates; an empty template yields `empty_value`.
  [[nodiscard]] result<json> eval(const eval_scope& scope,
                                  const json& empty_value = nullptr) const;

  /// Every `steps.x` read.
  [[nodiscard]] std::vector<std::string> step_refs() const;
};

/// What to do when a failure matches a diverge rule.
enum class diverge_action { retry, go_to, fail, continue_ };

[[nodiscard]] const char* to_string(diverge_action action);

/// One rule of a step's `diverge` list; the first match wins.
struct diverge_rule {
  /// Error kind to match; empty or "*" matches any kind.
  std::string kind;
  /// Substring the error message must contain (empty: any).
  std::string message_contains;
  /// Extra condition over `error` (`error.kind`, `error.details.code`...).
  std::optional<expression> condition;
  diverge_action action = diverge_action::fail;
  /// Stage to go to (`go_to`).
  std::string target;
  /// Policy for `retry`; the step's own policy (or the default) otherwise.
  std::optional<retry_policy> retry;
  int line = 0;
};

/// One step of a workflow.
struct step {
  std::string name;
  step_kind kind = step_kind::call;
  /// call: native function; task (and map of tasks): task type.
  std::string target;
  /// For a map: whether its children are `call`s or `task`s.
  step_kind child_kind = step_kind::call;
  std::string task_queue;
  /// Input handed to call/task (and map children); values for `set`;
  /// data shown to the approver.
  value_template input;
  /// sleep: a literal duration, or an expression (ms number or literal).
  std::int64_t sleep_ms = 0;
  std::optional<expression> sleep_expr;
  /// approval: 0 waits forever.
  std::int64_t approval_timeout_ms = 0;
  /// log: message and level; fail: error message.
  std::optional<text_template> message;
  std::string level = "info";
  /// fail: kind of the raised error.
  std::string fail_kind = "failed";
  /// map: the list and the number of children running at once (0: all).
  std::optional<expression> map_over;
  std::uint32_t concurrency = 0;
  /// Options.
  std::optional<retry_policy> retry;
  std::int64_t start_to_close_timeout_ms = 0;
  std::int64_t heartbeat_timeout_ms = 0;
  std::optional<text_template> idempotency_key;
  std::vector<diverge_rule> diverge;
  int line = 0;

  /// Whether the engine runs it outside the decider (call/task/map child).
  [[nodiscard]] bool is_external() const noexcept {
    return kind == step_kind::call || kind == step_kind::task
           || kind == step_kind::map;
  }
};

/// One rule of a stage's `branch` list; the first true condition wins.
struct branch_rule {
  /// Absent: always true (an "otherwise").
  std::optional<expression> condition;
  /// Stage name or `end`.
  std::string target;
  int line = 0;
};

/// An element of the timeline: one step, or a parallel group of steps that
/// run concurrently and join before the branch is evaluated.
struct stage {
  std::string name;
  std::vector<std::size_t> steps;
  bool parallel = false;
  std::vector<branch_rule> branch;
  int line = 0;
};

/// The reserved branch target that completes the execution.
inline constexpr std::string_view end_target = "end";

/// A complete, validated workflow definition.
struct definition {
  std::string name;
  /// The author's label (e.g. "3"); the hash below is what replay checks.
  std::string version;
  json input_schema;
  std::uint32_t max_iterations = 1000;
  std::vector<step> steps;
  std::vector<stage> stages;
  /// The execution's result; absent: an object of every step's result.
  value_template output;
  /// Where it was loaded from (diagnostics only; not part of the hash).
  std::string file;
  /// Hash of the canonical form; set by `finalize`.
  std::uint64_t version_hash = 0;

  /// Index of a step by name, or -1.
  [[nodiscard]] int step_index(std::string_view name) const;
  /// Index of a stage by name, or -1.
  [[nodiscard]] int stage_index(std::string_view name) const;
  /// Index of the stage holding step `step_idx`.
  [[nodiscard]] int stage_of(std::size_t step_idx) const;
};

/// The canonical form: a JSON document with sorted keys and normalized
/// expressions, independent of file layout and of how it was written.
[[nodiscard]] json canonical_form(const definition& def);

/// FNV-1a 64 of the canonical form's compact text.
[[nodiscard]] std::uint64_t compute_version_hash(const definition& def);

/// Validates `def` and sets its version hash. Used by the loader and the
/// builder; the definition is usable only if this succeeds.
[[nodiscard]] result<definition> finalize(definition def);

/// FNV-1a 64 of bytes (used for hashes and attempt tokens).
[[nodiscard]] std::uint64_t fnv1a64(std::string_view bytes,
                                    std::uint64_t seed = 0xcbf29ce484222325ULL);

} // namespace cerebelum::workflow
