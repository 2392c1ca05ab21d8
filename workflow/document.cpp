// Builds `document`s from YAML parser events, counting every node as it
// comes: an alias is charged the whole size of what it refers to, so an
// alias bomb is refused after at most `max_document_nodes` nodes of work,
// never expanded.
#include "workflow/document.hpp"

#include <sstream>
#include <unordered_map>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "workflow/limits.hpp"

namespace cerebelum::workflow::detail {

namespace {

/// Internal only: caught in `from_yaml` / `from_json`.
struct doc_error {
  diagnostic diag;
};

std::string hex_byte(unsigned char c) {
  const char* digits = "0123456789ABCDEF";
  return std::string{"0x"} + digits[c >> 4] + digits[c & 0xF];
}

/// 1-based line and column (in bytes) of `offset` in `text`.
std::pair<int, int> position(std::string_view text, std::size_t offset) {
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i)
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  return {line, static_cast<int>(offset - line_start) + 1};
}

/// Refuses text that is not UTF-8, or that holds control characters YAML
/// does not allow in a stream (all of C0 but tab, line feed and carriage
/// return, and DEL).
void check_text(std::string_view text, const std::string& file) {
  if (auto bad = limits::invalid_utf8_at(text)) {
    auto [line, column] = position(text, *bad);
    throw doc_error{diagnostic{
      file,
      line,
      column,
      {},
      "invalid UTF-8 (byte " + hex_byte(static_cast<unsigned char>(text[*bad]))
        + "): a definition must be UTF-8 text"}};
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      auto [line, column] = position(text, i);
      throw doc_error{
        diagnostic{file,
                   line,
                   column,
                   {},
                   "control character " + hex_byte(c)
                     + " in the document (YAML allows tab, line feed and "
                       "carriage return only; write it escaped in a "
                       "double-quoted string)"}};
    }
  }
}

} // namespace

const doc_node* doc_node::get(std::string_view key) const {
  if (k != kind::map) return nullptr;
  for (std::size_t i = 0; i + 1 < items.size(); i += 2)
    if (items[i]->is_scalar() && items[i]->text == key) return items[i + 1];
  return nullptr;
}

/// Builds a document node by node, within the document limits.
class doc_builder final : public YAML::EventHandler {
 public:
  doc_builder(document& doc, std::string file)
    : doc_(doc), file_(std::move(file)) {}

  // -- YAML events -----------------------------------------------------------

  void OnDocumentStart(const YAML::Mark&) override {}

  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& m, YAML::anchor_t anchor) override {
    auto& n = make(pos(m), doc_node::kind::null);
    leaf(n, anchor, 0);
  }

  void OnAlias(const YAML::Mark& m, YAML::anchor_t anchor) override {
    auto at = pos(m);
    if (anchor >= anchors_.size() || anchors_[anchor] == nullptr)
      fail(at, "unknown alias");
    const doc_node* target = anchors_[anchor];
    if (!target->done)
      fail(at, "an alias cannot refer to a node that contains it");
    charge(at, target->weight, target->text_bytes);
    attach(at, target);
  }

  void OnScalar(const YAML::Mark& m, const std::string& tag,
                YAML::anchor_t anchor, const std::string& value) override {
    auto at = pos(m);
    // Escapes in double-quoted scalars (`"\uD800"`) can produce bytes the
    // raw-text check never saw.
    if (auto bad = limits::invalid_utf8_at(value))
      fail(at, "invalid UTF-8 in a string (byte "
                 + hex_byte(static_cast<unsigned char>(value[*bad]))
                 + " at offset " + std::to_string(*bad) + ")");
    auto& n = make(at, doc_node::kind::scalar);
    n.text = value;
    n.quoted = tag == "!";
    n.text_bytes = value.size();
    leaf(n, anchor, value.size());
  }

  void OnSequenceStart(const YAML::Mark& m, const std::string&,
                       YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(pos(m), doc_node::kind::sequence, anchor);
  }

  void OnSequenceEnd() override {
    close();
  }

  void OnMapStart(const YAML::Mark& m, const std::string&,
                  YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(pos(m), doc_node::kind::map, anchor);
  }

  void OnMapEnd() override {
    close();
  }

  // -- JSON values -----------------------------------------------------------

  void add_json(const nlohmann::json& v) {
    const pos_t at{0, 0};
    switch (v.type()) {
      case nlohmann::json::value_t::object:
        open(at, doc_node::kind::map, 0);
        for (const auto& [key, value] : v.items()) {
          add_json_string(key);
          add_json(value);
        }
        close();
        return;
      case nlohmann::json::value_t::array:
        open(at, doc_node::kind::sequence, 0);
        for (const auto& item : v)
          add_json(item);
        close();
        return;
      case nlohmann::json::value_t::string:
        add_json_string(v.get_ref<const std::string&>());
        return;
      case nlohmann::json::value_t::null:
      case nlohmann::json::value_t::discarded:
        leaf(make(at, doc_node::kind::null), 0, 0);
        return;
      default: {
        auto& n = make(at, doc_node::kind::scalar);
        n.text = v.dump();
        n.text_bytes = n.text.size();
        leaf(n, 0, n.text_bytes);
      }
    }
  }

  void finish() {
    doc_.expanded_nodes_ = expanded_;
  }

 private:
  struct pos_t {
    int line;
    int column;
  };

  /// An open sequence or map, and for a map the keys seen so far.
  struct frame {
    doc_node* node;
    std::unordered_map<std::string_view, int> keys;
  };

  static pos_t pos(const YAML::Mark& m) {
    return {m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0};
  }

  [[noreturn]] void fail(pos_t at, std::string msg) {
    throw doc_error{diagnostic{file_, at.line, at.column, {}, std::move(msg)}};
  }

  void add_json_string(const std::string& s) {
    const pos_t at{0, 0};
    if (auto bad = limits::invalid_utf8_at(s))
      fail(at, "invalid UTF-8 in a string (byte "
                 + hex_byte(static_cast<unsigned char>(s[*bad])) + " at offset "
                 + std::to_string(*bad) + ")");
    auto& n = make(at, doc_node::kind::scalar);
    n.text = s;
    n.quoted = true;
    n.text_bytes = s.size();
    leaf(n, 0, s.size());
  }

  doc_node& make(pos_t at, doc_node::kind k) {
    auto& n = doc_.nodes_.emplace_back();
    n.k = k;
    n.line = at.line;
    n.column = at.column;
    return n;
  }

  /// Counts `nodes` more nodes and `bytes` more scalar bytes.
  void charge(pos_t at, std::size_t nodes, std::size_t bytes) {
    expanded_ += nodes;
    text_ += bytes;
    if (expanded_ > limits::max_document_nodes)
      fail(at, "the document expands to more than "
                 + std::to_string(limits::max_document_nodes)
                 + " nodes (an alias counts what it refers to each time it "
                   "is used; limit max_document_nodes)");
    if (text_ > limits::max_document_text_bytes)
      fail(at, "the document expands to more than "
                 + std::to_string(limits::max_document_text_bytes)
                 + " bytes of text (an alias counts what it refers to each "
                   "time it is used; limit max_document_text_bytes)");
  }

  void anchor(YAML::anchor_t id, const doc_node& n) {
    if (id == 0) return;
    if (anchors_.size() <= id) anchors_.resize(id + 1, nullptr);
    anchors_[id] = &n;
  }

  void leaf(doc_node& n, YAML::anchor_t id, std::size_t bytes) {
    pos_t at{n.line, n.column};
    charge(at, 1, bytes);
    n.done = true;
    anchor(id, n);
    attach(at, &n);
  }

  void open(pos_t at, doc_node::kind k, YAML::anchor_t id) {
    if (static_cast<int>(stack_.size()) + 1 > limits::max_document_depth)
      fail(at, "the document is nested more than "
                 + std::to_string(limits::max_document_depth)
                 + " levels deep (limit max_document_depth)");
    charge(at, 1, 0);
    auto& n = make(at, k);
    anchor(id, n);
    stack_.push_back({&n, {}});
  }

  void close() {
    auto* n = stack_.back().node;
    stack_.pop_back();
    std::size_t weight = 1;
    std::uint32_t height = 0;
    for (const auto* item : n->items) {
      weight += item->weight;
      n->text_bytes += item->text_bytes;
      height = std::max(height, item->height);
    }
    n->weight = static_cast<std::uint32_t>(weight);
    n->height = height + 1;
    n->done = true;
    attach({n->line, n->column}, n);
  }

  void attach(pos_t at, const doc_node* child) {
    if (stack_.empty()) {
      if (doc_.root_ == nullptr) doc_.root_ = child;
      return;
    }
    auto& top = stack_.back();
    if (static_cast<int>(stack_.size() + child->height)
        > limits::max_document_depth)
      fail(at, "the document is nested more than "
                 + std::to_string(limits::max_document_depth)
                 + " levels deep once its aliases are expanded (limit "
                   "max_document_depth)");
    top.node->items.push_back(child);
    if (top.node->k != doc_node::kind::map || top.node->items.size() % 2 == 0)
      return;
    if (!child->is_scalar())
      fail(at, "a mapping key must be a string or a number");
    auto [it, fresh] = top.keys.emplace(child->text, at.line);
    if (!fresh)
      fail(at, "duplicate key '" + child->text + "'"
                 + (it->second > 0
                      ? " (first at line " + std::to_string(it->second) + ")"
                      : std::string{}));
  }

  document& doc_;
  std::string file_;
  std::vector<frame> stack_;
  std::vector<const doc_node*> anchors_;
  std::size_t expanded_ = 0;
  std::size_t text_ = 0;
};

result<document> document::from_yaml(std::string_view text,
                                     const std::string& file) {
  document doc;
  try {
    if (text.size() > limits::max_document_bytes)
      throw doc_error{diagnostic{file,
                                 0,
                                 0,
                                 {},
                                 "the document is "
                                   + std::to_string(text.size())
                                   + " bytes, over the limit of "
                                   + std::to_string(limits::max_document_bytes)
                                   + " bytes (max_document_bytes)"}};
    check_text(text, file);
    std::istringstream in{std::string{text}};
    YAML::Parser parser{in};
    doc_builder builder{doc, file};
    parser.HandleNextDocument(builder);
    builder.finish();
  } catch (const doc_error& e) {
    return e.diag;
  } catch (const YAML::Exception& e) {
    return diagnostic{file,
                      e.mark.line >= 0 ? e.mark.line + 1 : 0,
                      e.mark.column >= 0 ? e.mark.column + 1 : 0,
                      {},
                      "syntax error: " + e.msg};
  } catch (const std::exception& e) {
    return diagnostic{file, 0, 0, {}, std::string{"cannot parse: "} + e.what()};
  }
  return doc;
}

result<document> document::from_json(const nlohmann::json& v,
                                     const std::string& file) {
  document doc;
  try {
    doc_builder builder{doc, file};
    builder.add_json(v);
    builder.finish();
  } catch (const doc_error& e) {
    return e.diag;
  } catch (const std::exception& e) {
    return diagnostic{file, 0, 0, {}, std::string{"cannot load: "} + e.what()};
  }
  return doc;
}

} // namespace cerebelum::workflow::detail
