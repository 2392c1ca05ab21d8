#pragma once

// The parsed form of an expression: a flat array of small nodes. Included
// by expression.hpp (an `expression` holds its tree by value); the parser,
// evaluator and renderer are in expression_ast.hpp.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace cerebelum::workflow {

using json = nlohmann::json;

/// Operators of the expression language.
enum class expr_op : std::uint8_t {
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

/// One node of a parsed expression: 24 bytes, no allocation of its own.
///
/// Nodes live in one array in post-order: a node's subtree is the `size`
/// nodes that end with it, and its last child is right before it. (A tree
/// of `unique_ptr` nodes with a string and two vectors each cost ~1.1 KB
/// for `steps.a.amount * 2 + 1`; a definition holds thousands.)
struct expr_node {
  enum class kind : std::uint8_t {
    /// `literals[text]`.
    literal,
    /// A root variable (`input`, `steps`, `error`, `item`, `index`), named
    /// by `text`/`text_len` in the source.
    variable,
    /// `child0.name`.
    member,
    /// `child0[child1]`.
    index,
    /// `op child0`.
    unary,
    /// `child0 op child1`.
    binary,
    /// Function `name(children...)`.
    call,
    /// `[children...]`.
    list,
    /// `{key0: value0, ...}`: children alternate key literals and values.
    object,
  };
  kind k = kind::literal;
  expr_op op = expr_op::add;
  /// Height of the subtree (a leaf is 1).
  std::uint16_t height = 1;
  /// 1-based column of the node's first character in the source.
  std::uint32_t column = 1;
  /// Nodes in the subtree, this one included.
  std::uint32_t size = 1;
  /// Number of children.
  std::uint32_t arity = 0;
  /// A name's offset in the source, or a literal's index in `literals`.
  std::uint32_t text = 0;
  std::uint32_t text_len = 0;
};

/// A parsed expression: its source, nodes and literal values.
struct expr_tree {
  std::string source;
  std::vector<expr_node> nodes;
  std::vector<json> literals;

  /// The name of a variable, member or call node.
  [[nodiscard]] std::string_view name(const expr_node& n) const {
    return std::string_view{source}.substr(n.text, n.text_len);
  }

  /// Index of the root (the last node).
  [[nodiscard]] std::uint32_t root() const {
    return static_cast<std::uint32_t>(nodes.size() - 1);
  }

  /// Indices of the children of node `i`, first to last.
  [[nodiscard]] std::vector<std::uint32_t> children(std::uint32_t i) const;

  /// The first of node `i`'s two children (binary, index); its last child
  /// is `i - 1`.
  [[nodiscard]] std::uint32_t first_of_two(std::uint32_t i) const {
    return i - 1 - nodes[i - 1].size;
  }
};

} // namespace cerebelum::workflow
