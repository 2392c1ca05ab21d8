#include "workflow/expression.hpp"

#include "workflow/expression_ast.hpp"

namespace cerebelum::workflow {

namespace {

/// `text` with control characters and bytes that are not UTF-8 written as
/// `\xNN`: a diagnostic echoes names and keys from the document, and its
/// rendering must stay one honest line in a log.
std::string one_line(std::string_view text) {
  if (!limits::invalid_utf8_at(text)) {
    bool clean = true;
    for (unsigned char c : text)
      clean = clean && c >= 0x20 && c != 0x7F;
    if (clean) return std::string{text};
  }
  std::string out;
  const char* digits = "0123456789abcdef";
  std::size_t i = 0;
  while (i < text.size()) {
    auto bad = limits::invalid_utf8_at(text.substr(i));
    auto good_end = bad ? i + *bad : text.size();
    for (; i < good_end; ++i) {
      auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x20 || c == 0x7F) {
        out += "\\x";
        out += digits[c >> 4];
        out += digits[c & 0xF];
      } else {
        out += text[i];
      }
    }
    if (bad) {
      auto c = static_cast<unsigned char>(text[i++]);
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 0xF];
    }
  }
  return out;
}

} // namespace

std::string diagnostic::to_string() const {
  std::string out;
  if (!file.empty()) out += one_line(file);
  if (line > 0) out += ":" + std::to_string(line);
  if (line > 0 && column > 0) out += ":" + std::to_string(column);
  if (!out.empty()) out += ": ";
  if (!step.empty()) out += "step '" + one_line(step) + "': ";
  if (line == 0 && column > 0) out += "column " + std::to_string(column) + ": ";
  return out + one_line(message);
}

const char* op_name(expr_op op) {
  switch (op) {
    case expr_op::add: return "+";
    case expr_op::sub: return "-";
    case expr_op::mul: return "*";
    case expr_op::div: return "/";
    case expr_op::mod: return "%";
    case expr_op::eq: return "==";
    case expr_op::ne: return "!=";
    case expr_op::lt: return "<";
    case expr_op::le: return "<=";
    case expr_op::gt: return ">";
    case expr_op::ge: return ">=";
    case expr_op::and_: return "and";
    case expr_op::or_: return "or";
    case expr_op::in: return "in";
    case expr_op::neg: return "-";
    case expr_op::not_: return "not";
  }
  return "?";
}

std::string to_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::uint32_t> expr_tree::children(std::uint32_t i) const {
  std::vector<std::uint32_t> out(nodes[i].arity);
  auto at = i;
  for (auto k = out.size(); k > 0; --k) {
    at -= k == out.size() ? 1 : nodes[out[k]].size;
    out[k - 1] = at;
  }
  return out;
}

namespace {

std::string dump(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string render(const expr_tree& t, std::uint32_t i) {
  using k = expr_node::kind;
  const auto& n = t.nodes[i];
  auto join = [&](const char* open, const char* close) {
    std::string out = open;
    auto kids = t.children(i);
    if (n.k == k::object) {
      for (std::size_t c = 0; c + 1 < kids.size(); c += 2) {
        if (c > 0) out += ", ";
        out += dump(t.literals[t.nodes[kids[c]].text]) + ": "
               + render(t, kids[c + 1]);
      }
    } else {
      for (std::size_t c = 0; c < kids.size(); ++c) {
        if (c > 0) out += ", ";
        out += render(t, kids[c]);
      }
    }
    return out + close;
  };
  switch (n.k) {
    case k::literal: return dump(t.literals[n.text]);
    case k::variable: return std::string{t.name(n)};
    case k::member: return render(t, i - 1) + "." + std::string{t.name(n)};
    case k::index:
      return render(t, t.first_of_two(i)) + "[" + render(t, i - 1) + "]";
    case k::unary:
      return std::string{"("} + op_name(n.op) + " " + render(t, i - 1) + ")";
    case k::binary:
      return "(" + render(t, t.first_of_two(i)) + " " + op_name(n.op) + " "
             + render(t, i - 1) + ")";
    case k::call: return std::string{t.name(n)} + join("(", ")");
    case k::list: return join("[", "]");
    case k::object: return join("{", "}");
  }
  return "?";
}

} // namespace

std::string render_expr_tree(const expr_tree& tree) {
  return tree.nodes.empty() ? std::string{} : render(tree, tree.root());
}

std::vector<std::string> tree_step_refs(const expr_tree& t) {
  std::vector<std::string> out;
  for (std::uint32_t i = 1; i < t.nodes.size(); ++i) {
    const auto& n = t.nodes[i];
    const auto& base = t.nodes[i - 1];
    if (n.k != expr_node::kind::member || base.k != expr_node::kind::variable
        || t.name(base) != "steps")
      continue;
    auto name = std::string{t.name(n)};
    if (std::find(out.begin(), out.end(), name) == out.end())
      out.push_back(std::move(name));
  }
  return out;
}

result<expression> expression::parse(std::string_view source) {
  auto tree = parse_expr_tree(source);
  if (!tree) return tree.error();
  expression e;
  e.tree_ = std::move(*tree);
  return e;
}

result<json> expression::eval(const eval_scope& scope) const {
  if (tree_.nodes.empty()) return diagnostic{{}, 0, 0, {}, "empty expression"};
  return eval_expr_tree(tree_, scope);
}

std::string expression::canonical() const {
  return render_expr_tree(tree_);
}

std::vector<std::string> expression::step_refs() const {
  return tree_step_refs(tree_);
}

result<text_template> text_template::parse(std::string_view source) {
  text_template t;
  t.source_ = std::string{source};
  std::size_t pos = 0;
  while (pos < source.size()) {
    auto open = source.find("${", pos);
    if (open == std::string_view::npos) {
      t.parts_.push_back({std::string{source.substr(pos)}, std::nullopt});
      break;
    }
    if (open > pos)
      t.parts_.push_back(
        {std::string{source.substr(pos, open - pos)}, std::nullopt});
    // An object literal inside a hole needs balanced braces.
    auto close = std::string_view::npos;
    int depth = 0;
    for (auto i = open + 2; i < source.size(); ++i) {
      if (source[i] == '{') {
        ++depth;
      } else if (source[i] == '}') {
        if (depth == 0) {
          close = i;
          break;
        }
        --depth;
      }
    }
    if (close == std::string_view::npos)
      return diagnostic{
        {}, 0, static_cast<int>(open) + 1, {}, "unterminated '${' in template"};
    auto inner = source.substr(open + 2, close - open - 2);
    auto e = expression::parse(inner);
    if (!e) {
      auto d = e.error();
      d.column += static_cast<int>(open) + 2;
      return d;
    }
    t.parts_.push_back({{}, std::move(*e)});
    pos = close + 1;
  }
  return t;
}

result<std::string> text_template::render(const eval_scope& scope,
                                          std::size_t max_bytes,
                                          std::string_view limit_name) const {
  std::string out;
  for (const auto& p : parts_) {
    if (!p.expr) {
      out += p.text;
    } else {
      auto v = p.expr->eval(scope);
      if (!v) return v.error();
      if (v->is_string()) {
        // Checked before appending: `out` never grows past the limit.
        if (out.size() + v->get_ref<const std::string&>().size() <= max_bytes)
          out += v->get_ref<const std::string&>();
        else
          out.resize(max_bytes + 1);
      } else {
        out += to_text(*v);
      }
    }
    if (out.size() > max_bytes)
      return diagnostic{{},
                        0,
                        0,
                        {},
                        "text too large: more than " + std::to_string(max_bytes)
                          + " bytes (limit " + std::string{limit_name} + ")"};
  }
  return out;
}

std::string text_template::canonical() const {
  std::string out;
  for (const auto& p : parts_)
    out += p.expr ? "${" + p.expr->canonical() + "}" : p.text;
  return out;
}

std::vector<std::string> text_template::step_refs() const {
  std::vector<std::string> out;
  for (const auto& p : parts_)
    if (p.expr)
      for (const auto& r : p.expr->step_refs())
        out.push_back(r);
  return out;
}

} // namespace cerebelum::workflow
