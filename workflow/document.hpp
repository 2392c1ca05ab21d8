#pragma once

// A definition document as a small tree of nodes with their positions,
// built from YAML parser events (or from a JSON value) within the limits of
// `limits.hpp`. Used by the loader only.
//
// Why not yaml-cpp's own `YAML::Node`: it costs ~440 bytes per node (a
// 310 KB definition took 13.6 MB), it expands nothing but lets every reader
// of an alias walk the aliased tree again (9 levels of 10 aliases are 10^9
// nodes to whoever converts it), and it keeps the first of two equal keys
// without a word. Here every node is counted as it is built, aliases count
// what they expand to, and a duplicate key is an error with its line.

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflow/result.hpp"

namespace cerebelum::workflow::detail {

/// One node of a document. Aliases are the node they refer to (shared).
struct doc_node {
  enum class kind : std::uint8_t { null, scalar, sequence, map };
  kind k = kind::null;
  /// A scalar written in quotes (YAML `'x'`/`"x"`, any JSON string): never
  /// read as a number, boolean or null.
  bool quoted = false;
  /// Whether the node is complete (an alias may refer only to those).
  bool done = false;
  /// 1-based position in the source; 0 when unknown (JSON values).
  int line = 0;
  int column = 0;
  /// Nodes and scalar bytes this node expands to, itself included.
  std::uint32_t weight = 1;
  std::uint32_t height = 0;
  std::size_t text_bytes = 0;
  /// The text of a scalar.
  std::string text;
  /// Items of a sequence; keys and values of a map, alternating.
  std::vector<const doc_node*> items;

  [[nodiscard]] bool is_map() const noexcept {
    return k == kind::map;
  }
  [[nodiscard]] bool is_sequence() const noexcept {
    return k == kind::sequence;
  }
  [[nodiscard]] bool is_scalar() const noexcept {
    return k == kind::scalar;
  }
  [[nodiscard]] bool is_null() const noexcept {
    return k == kind::null;
  }
  /// Items of a sequence, entries of a map.
  [[nodiscard]] std::size_t size() const noexcept {
    return k == kind::map ? items.size() / 2 : items.size();
  }
  /// The value of `key` in a map, or null when absent (or not a map).
  [[nodiscard]] const doc_node* get(std::string_view key) const;
};

/// A parsed document: owns its nodes.
class document {
 public:
  document() = default;
  document(document&&) = default;
  document& operator=(document&&) = default;

  /// The root; null for an empty document.
  [[nodiscard]] const doc_node* root() const noexcept {
    return root_;
  }

  /// Nodes it expands to (aliases expanded).
  [[nodiscard]] std::size_t expanded_nodes() const noexcept {
    return expanded_nodes_;
  }

  /// Parses the first document of YAML `text` (JSON is YAML too). Refuses
  /// invalid UTF-8, documents over the limits, duplicate keys, keys that
  /// are not scalars and aliases of a node that encloses them, naming
  /// `file`, the line and the column.
  [[nodiscard]] static result<document> from_yaml(std::string_view text,
                                                  const std::string& file);

  /// Builds a document from a JSON value within the same limits.
  [[nodiscard]] static result<document> from_json(const nlohmann::json& doc,
                                                  const std::string& file);

 private:
  friend class doc_builder;
  std::deque<doc_node> nodes_;
  const doc_node* root_ = nullptr;
  std::size_t expanded_nodes_ = 0;
};

} // namespace cerebelum::workflow::detail
