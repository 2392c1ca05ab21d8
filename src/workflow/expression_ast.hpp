#pragma once

#include <memory>
#include <string>
#include <vector>

#include "src/workflow/expression.hpp"

namespace cerebelum::workflow {

/// Operators of the expression language.
enum class expr_op {
  add,
  sub,
  mul,
  div,
  mod,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  and_,
  or_,
  in,
  neg,
  not_,
};

/// One node of a parsed expression. Immutable after parsing.
struct expr_node {
  enum class kind {
    /// A JSON literal in `value`.
    literal,
    /// A root variable (`input`, `steps`, `error`, `item`, `index`) in `name`.
    variable,
    /// `children[0].name`.
    member,
    /// `children[0][children[1]]`.
    index,
    /// `op children[0]`.
    unary,
    /// `children[0] op children[1]`.
    binary,
    /// Function `name(children...)`.
    call,
    /// `[children...]`.
    list,
    /// `{keys[i]: children[i]}`.
    object,
  };
  kind k = kind::literal;
  expr_op op = expr_op::add;
  json value;
  std::string name;
  std::vector<std::string> keys;
  std::vector<std::unique_ptr<expr_node>> children;
  /// 1-based column of the node's first character in the source.
  int column = 1;
};

/// Parses `source` into a tree; `step_refs` collects `steps.x` names.
[[nodiscard]] result<std::unique_ptr<expr_node>>
parse_expr_tree(std::string_view source, std::vector<std::string>& step_refs);

/// Evaluates a tree.
[[nodiscard]] result<json> eval_expr_tree(const expr_node& node,
                                          const eval_scope& scope);

/// Renders a tree canonically.
[[nodiscard]] std::string render_expr_tree(const expr_node& node);

/// Spelling of an operator.
[[nodiscard]] const char* op_name(expr_op op);

} // namespace cerebelum::workflow
