#pragma once

#include <string>
#include <vector>

#include "workflow/expression.hpp"
#include "workflow/expression_tree.hpp"

namespace cerebelum::workflow {

/// Parses `source` into a tree.
[[nodiscard]] result<expr_tree> parse_expr_tree(std::string_view source);

/// Evaluates a tree.
[[nodiscard]] result<json> eval_expr_tree(const expr_tree& tree,
                                          const eval_scope& scope);

/// Renders a tree canonically.
[[nodiscard]] std::string render_expr_tree(const expr_tree& tree);

/// Names `x` of every `steps.x` the tree reads, in order of appearance.
[[nodiscard]] std::vector<std::string> tree_step_refs(const expr_tree& tree);

/// Spelling of an operator.
[[nodiscard]] const char* op_name(expr_op op);

} // namespace cerebelum::workflow
