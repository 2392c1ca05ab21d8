#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflow/expression_tree.hpp"
#include "workflow/limits.hpp"
#include "workflow/result.hpp"

namespace cerebelum::workflow {

/// What an expression may read while it is evaluated. Absent roots (null
/// pointers) are errors when referenced.
struct eval_scope {
  /// The workflow input (`input`).
  const json* input = nullptr;
  /// Results of steps by name (`steps.<name>`), a JSON object.
  const json* steps = nullptr;
  /// The error being matched by a diverge rule (`error`).
  const json* error = nullptr;
  /// The element of a map step's list (`item`) and its position (`index`).
  const json* item = nullptr;
  const json* index = nullptr;
  /// The recorded decision time returned by `now()`, in ms since the epoch.
  std::int64_t now_ms = 0;
};

/// A parsed expression of the workflow expression language.
///
/// Parsed once (at load time); evaluating it never throws: a type error, a
/// missing path or an arithmetic fault is returned as a diagnostic whose
/// message the decider records as a failure of kind `expression_error`.
class expression {
 public:
  /// Parses `source`; on error the diagnostic's column is 1-based.
  /// Sources over `limits::max_expression_bytes`, nested deeper than
  /// `limits::max_expression_nesting` or with a tree deeper than
  /// `limits::max_expression_depth` are refused.
  [[nodiscard]] static result<expression> parse(std::string_view source);

  /// Evaluates against `scope`. A value built on the way (a concatenation,
  /// a list or object literal, `upper`/`lower`) over
  /// `limits::max_value_bytes` or `limits::max_value_depth` is an error.
  [[nodiscard]] result<json> eval(const eval_scope& scope) const;

  /// The text it was parsed from.
  [[nodiscard]] const std::string& source() const noexcept {
    return tree_.source;
  }

  /// A normalized rendering (fully parenthesized, canonical spacing); two
  /// expressions with the same meaning and layout-only differences render
  /// the same. Used by the version hash.
  [[nodiscard]] std::string canonical() const;

  /// Names `x` of every `steps.x` path the expression reads.
  [[nodiscard]] std::vector<std::string> step_refs() const;

 private:
  expr_tree tree_;
};

/// A string with `${expression}` holes (log messages, idempotency keys,
/// error messages). Strings are inserted raw, other values as JSON text.
class text_template {
 public:
  /// Parses `source`; the diagnostic column points into `source`.
  [[nodiscard]] static result<text_template> parse(std::string_view source);

  /// Renders the template; a text over `max_bytes` is an error (naming
  /// the limit `limit_name`).
  [[nodiscard]] result<std::string>
  render(const eval_scope& scope,
         std::size_t max_bytes = limits::max_value_bytes,
         std::string_view limit_name = "max_value_bytes") const;

  [[nodiscard]] const std::string& source() const noexcept {
    return source_;
  }

  [[nodiscard]] bool empty() const noexcept {
    return source_.empty();
  }

  /// Canonical rendering: literal text and canonical holes.
  [[nodiscard]] std::string canonical() const;

  /// Every `steps.x` read by any hole.
  [[nodiscard]] std::vector<std::string> step_refs() const;

 private:
  struct part {
    std::string text;
    std::optional<expression> expr;
  };
  std::string source_;
  std::vector<part> parts_;
};

/// Renders a JSON value as text for templates: strings raw, others dumped.
[[nodiscard]] std::string to_text(const json& value);

} // namespace cerebelum::workflow
