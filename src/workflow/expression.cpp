#include "src/workflow/expression.hpp"

#include "src/workflow/expression_ast.hpp"

namespace cerebelum::workflow {

std::string diagnostic::to_string() const {
  std::string out;
  if (!file.empty()) out += file;
  if (line > 0) out += ":" + std::to_string(line);
  if (line > 0 && column > 0) out += ":" + std::to_string(column);
  if (!out.empty()) out += ": ";
  if (!step.empty()) out += "step '" + step + "': ";
  if (line == 0 && column > 0) out += "column " + std::to_string(column) + ": ";
  return out + message;
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

std::string render_expr_tree(const expr_node& n) {
  using k = expr_node::kind;
  auto join = [&](const char* open, const char* close) {
    std::string out = open;
    for (std::size_t i = 0; i < n.children.size(); ++i) {
      if (i > 0) out += ", ";
      if (n.k == k::object)
        out += json(n.keys[i]).dump(-1, ' ', false,
                                    json::error_handler_t::replace)
               + ": ";
      out += render_expr_tree(*n.children[i]);
    }
    return out + close;
  };
  switch (n.k) {
    case k::literal:
      return n.value.dump(-1, ' ', false, json::error_handler_t::replace);
    case k::variable: return n.name;
    case k::member: return render_expr_tree(*n.children[0]) + "." + n.name;
    case k::index:
      return render_expr_tree(*n.children[0]) + "["
             + render_expr_tree(*n.children[1]) + "]";
    case k::unary:
      return std::string{"("} + op_name(n.op) + " "
             + render_expr_tree(*n.children[0]) + ")";
    case k::binary:
      return "(" + render_expr_tree(*n.children[0]) + " " + op_name(n.op) + " "
             + render_expr_tree(*n.children[1]) + ")";
    case k::call: return n.name + join("(", ")");
    case k::list: return join("[", "]");
    case k::object: return join("{", "}");
  }
  return "?";
}

result<expression> expression::parse(std::string_view source) {
  expression e;
  e.source_ = std::string{source};
  auto tree = parse_expr_tree(source, e.step_refs_);
  if (!tree) return tree.error();
  e.root_ = std::shared_ptr<const expr_node>(std::move(*tree));
  return e;
}

result<json> expression::eval(const eval_scope& scope) const {
  if (!root_) return diagnostic{{}, 0, 0, {}, "empty expression"};
  return eval_expr_tree(*root_, scope);
}

std::string expression::canonical() const {
  return root_ ? render_expr_tree(*root_) : std::string{};
}

result<text_template> text_template::parse(std::string_view source) {
  text_template t;
  t.source_ = std::string{source};
  std::size_t pos = 0;
  while (pos < source.size()) {
    auto open = source.find("${", pos);
    if (open == std::string_view::npos) {
      t.parts_.push_back({std::string{source.substr(pos)}, nullptr});
      break;
    }
    if (open > pos)
      t.parts_.push_back({std::string{source.substr(pos, open - pos)}, {}});
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
    t.parts_.push_back({{}, std::make_shared<expression>(std::move(*e))});
    pos = close + 1;
  }
  return t;
}

result<std::string> text_template::render(const eval_scope& scope) const {
  std::string out;
  for (const auto& p : parts_) {
    if (!p.expr) {
      out += p.text;
      continue;
    }
    auto v = p.expr->eval(scope);
    if (!v) return v.error();
    out += to_text(*v);
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
