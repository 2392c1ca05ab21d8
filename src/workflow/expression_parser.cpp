// Recursive-descent parser of the expression language.
//
//   expr    := or
//   or      := and (("or" | "||") and)*
//   and     := not (("and" | "&&") not)*
//   not     := ("not" | "!") not | cmp
//   cmp     := add (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" ) add)?
//   add     := mul (("+" | "-") mul)*
//   mul     := unary (("*" | "/" | "%") unary)*
//   unary   := "-" unary | postfix
//   postfix := primary ("." ident | "[" expr "]")*
//   primary := number | string | true | false | null | list | object
//            | ident "(" args ")" | ident | "(" expr ")"
#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "src/workflow/expression_ast.hpp"

namespace cerebelum::workflow {

namespace {

constexpr int max_depth = 64;
constexpr std::size_t max_source = 64 * 1024;

const char* const roots[] = {"input", "steps", "error", "item", "index"};
const char* const functions[] = {"len", "lower", "upper", "contains", "now"};

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}

using node_ptr = std::unique_ptr<expr_node>;

class parser {
 public:
  parser(std::string_view src, std::vector<std::string>& refs)
    : src_(src), refs_(refs) {}

  result<node_ptr> run() {
    if (src_.size() > max_source) return fail(1, "expression too long");
    auto root = parse_or();
    if (!ok_) return error_;
    skip_ws();
    if (pos_ != src_.size()) return fail(col(), "unexpected trailing input");
    return root;
  }

 private:
  int col() const {
    return static_cast<int>(pos_) + 1;
  }

  diagnostic fail(int column, std::string msg) {
    if (ok_) {
      ok_ = false;
      error_ = diagnostic{{}, 0, column, {}, std::move(msg)};
    }
    return error_;
  }

  node_ptr bad(std::string msg) {
    fail(col(), std::move(msg));
    return nullptr;
  }

  void skip_ws() {
    while (pos_ < src_.size()
           && (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n'
               || src_[pos_] == '\r'))
      ++pos_;
  }

  /// Consumes `tok` if it comes next; words must not run into identifiers.
  bool accept(std::string_view tok) {
    skip_ws();
    if (src_.substr(pos_, tok.size()) != tok) return false;
    if (is_ident_start(tok[0]) && pos_ + tok.size() < src_.size()
        && is_ident_char(src_[pos_ + tok.size()]))
      return false;
    // "<" must not match the start of "<=", "=" never stands alone.
    pos_ += tok.size();
    return true;
  }

  bool peek(char c) {
    skip_ws();
    return pos_ < src_.size() && src_[pos_] == c;
  }

  static node_ptr make(expr_node::kind k, int column) {
    auto n = std::make_unique<expr_node>();
    n->k = k;
    n->column = column;
    return n;
  }

  static node_ptr binary(expr_op op, node_ptr lhs, node_ptr rhs, int column) {
    auto n = make(expr_node::kind::binary, column);
    n->op = op;
    n->children.push_back(std::move(lhs));
    n->children.push_back(std::move(rhs));
    return n;
  }

  struct depth_guard {
    parser& p;
    explicit depth_guard(parser& self) : p(self) {
      ++p.depth_;
    }
    ~depth_guard() {
      --p.depth_;
    }
  };

  node_ptr parse_or() {
    depth_guard g{*this};
    if (depth_ > max_depth) return bad("expression nested too deeply");
    auto lhs = parse_and();
    while (ok_) {
      skip_ws();
      int c = col();
      if (!accept("or") && !accept("||")) break;
      auto rhs = parse_and();
      if (!ok_) return nullptr;
      lhs = binary(expr_op::or_, std::move(lhs), std::move(rhs), c);
    }
    return ok_ ? std::move(lhs) : nullptr;
  }

  node_ptr parse_and() {
    auto lhs = parse_not();
    while (ok_) {
      skip_ws();
      int c = col();
      if (!accept("and") && !accept("&&")) break;
      auto rhs = parse_not();
      if (!ok_) return nullptr;
      lhs = binary(expr_op::and_, std::move(lhs), std::move(rhs), c);
    }
    return ok_ ? std::move(lhs) : nullptr;
  }

  node_ptr parse_not() {
    depth_guard g{*this};
    if (depth_ > max_depth) return bad("expression nested too deeply");
    skip_ws();
    int c = col();
    bool bang = peek('!') && src_.substr(pos_, 2) != "!=";
    if (bang || accept("not")) {
      if (bang) ++pos_;
      auto operand = parse_not();
      if (!ok_) return nullptr;
      auto n = make(expr_node::kind::unary, c);
      n->op = expr_op::not_;
      n->children.push_back(std::move(operand));
      return n;
    }
    return parse_cmp();
  }

  node_ptr parse_cmp() {
    auto lhs = parse_add();
    if (!ok_) return nullptr;
    skip_ws();
    int c = col();
    static const std::pair<std::string_view, expr_op> ops[]
      = {{"==", expr_op::eq}, {"!=", expr_op::ne}, {"<=", expr_op::le},
         {">=", expr_op::ge}, {"<", expr_op::lt},  {">", expr_op::gt},
         {"in", expr_op::in}};
    for (const auto& [tok, op] : ops) {
      if (accept(tok)) {
        auto rhs = parse_add();
        if (!ok_) return nullptr;
        return binary(op, std::move(lhs), std::move(rhs), c);
      }
    }
    return lhs;
  }

  node_ptr parse_add() {
    auto lhs = parse_mul();
    while (ok_) {
      skip_ws();
      int c = col();
      expr_op op;
      if (accept("+"))
        op = expr_op::add;
      else if (accept("-"))
        op = expr_op::sub;
      else
        break;
      auto rhs = parse_mul();
      if (!ok_) return nullptr;
      lhs = binary(op, std::move(lhs), std::move(rhs), c);
    }
    return ok_ ? std::move(lhs) : nullptr;
  }

  node_ptr parse_mul() {
    auto lhs = parse_unary();
    while (ok_) {
      skip_ws();
      int c = col();
      expr_op op;
      if (accept("*"))
        op = expr_op::mul;
      else if (accept("/"))
        op = expr_op::div;
      else if (accept("%"))
        op = expr_op::mod;
      else
        break;
      auto rhs = parse_unary();
      if (!ok_) return nullptr;
      lhs = binary(op, std::move(lhs), std::move(rhs), c);
    }
    return ok_ ? std::move(lhs) : nullptr;
  }

  node_ptr parse_unary() {
    depth_guard g{*this};
    if (depth_ > max_depth) return bad("expression nested too deeply");
    skip_ws();
    int c = col();
    if (accept("-")) {
      auto operand = parse_unary();
      if (!ok_) return nullptr;
      auto n = make(expr_node::kind::unary, c);
      n->op = expr_op::neg;
      n->children.push_back(std::move(operand));
      return n;
    }
    return parse_postfix();
  }

  node_ptr parse_postfix() {
    auto base = parse_primary();
    while (ok_) {
      skip_ws();
      int c = col();
      if (accept(".")) {
        skip_ws();
        auto name = ident();
        if (name.empty()) return bad("expected a field name after '.'");
        if (base->k == expr_node::kind::variable && base->name == "steps")
          if (std::find(refs_.begin(), refs_.end(), name) == refs_.end())
            refs_.push_back(name);
        auto n = make(expr_node::kind::member, c);
        n->name = std::move(name);
        n->children.push_back(std::move(base));
        base = std::move(n);
      } else if (accept("[")) {
        auto idx = parse_or();
        if (!ok_) return nullptr;
        if (!accept("]")) return bad("expected ']'");
        auto n = make(expr_node::kind::index, c);
        n->children.push_back(std::move(base));
        n->children.push_back(std::move(idx));
        base = std::move(n);
      } else {
        break;
      }
    }
    return ok_ ? std::move(base) : nullptr;
  }

  std::string ident() {
    if (pos_ >= src_.size() || !is_ident_start(src_[pos_])) return {};
    auto start = pos_;
    while (pos_ < src_.size() && is_ident_char(src_[pos_]))
      ++pos_;
    return std::string{src_.substr(start, pos_ - start)};
  }

  node_ptr parse_primary() {
    skip_ws();
    int c = col();
    if (pos_ >= src_.size()) return bad("unexpected end of expression");
    char ch = src_[pos_];
    if (ch >= '0' && ch <= '9') return number();
    if (ch == '"' || ch == '\'') return string_literal();
    if (accept("(")) {
      auto inner = parse_or();
      if (!ok_) return nullptr;
      if (!accept(")")) return bad("expected ')'");
      return inner;
    }
    if (accept("[")) return list(c);
    if (accept("{")) return object(c);
    if (!is_ident_start(ch))
      return bad(std::string{"unexpected character '"} + ch + "'");
    auto name = ident();
    if (name == "true" || name == "false" || name == "null") {
      auto n = make(expr_node::kind::literal, c);
      n->value = name == "null" ? json(nullptr) : json(name == "true");
      return n;
    }
    if (peek('(')) return call(std::move(name), c);
    if (std::find(std::begin(roots), std::end(roots), name)
        == std::end(roots)) {
      fail(c, "unknown name '" + name
                + "' (use input, steps, error, item or index)");
      return nullptr;
    }
    auto n = make(expr_node::kind::variable, c);
    n->name = std::move(name);
    return n;
  }

  node_ptr call(std::string name, int c) {
    if (std::find(std::begin(functions), std::end(functions), name)
        == std::end(functions)) {
      fail(c, "unknown function '" + name + "'");
      return nullptr;
    }
    accept("(");
    auto n = make(expr_node::kind::call, c);
    n->name = std::move(name);
    if (!accept(")")) {
      do {
        auto arg = parse_or();
        if (!ok_) return nullptr;
        n->children.push_back(std::move(arg));
      } while (accept(","));
      if (!accept(")")) return bad("expected ')' or ','");
    }
    return n;
  }

  node_ptr list(int c) {
    auto n = make(expr_node::kind::list, c);
    if (accept("]")) return n;
    do {
      auto item = parse_or();
      if (!ok_) return nullptr;
      n->children.push_back(std::move(item));
    } while (accept(","));
    if (!accept("]")) return bad("expected ']' or ','");
    return n;
  }

  node_ptr object(int c) {
    auto n = make(expr_node::kind::object, c);
    if (accept("}")) return n;
    do {
      skip_ws();
      std::string key;
      if (peek('"') || peek('\'')) {
        auto lit = string_literal();
        if (!ok_) return nullptr;
        key = lit->value.get<std::string>();
      } else {
        key = ident();
        if (key.empty()) return bad("expected an object key");
      }
      if (!accept(":")) return bad("expected ':' after object key");
      auto value = parse_or();
      if (!ok_) return nullptr;
      n->keys.push_back(std::move(key));
      n->children.push_back(std::move(value));
    } while (accept(","));
    if (!accept("}")) return bad("expected '}' or ','");
    return n;
  }

  node_ptr number() {
    int c = col();
    auto start = pos_;
    bool is_float = false;
    while (pos_ < src_.size()
           && ((src_[pos_] >= '0' && src_[pos_] <= '9') || src_[pos_] == '.'
               || src_[pos_] == 'e' || src_[pos_] == 'E'
               || ((src_[pos_] == '+' || src_[pos_] == '-')
                   && (src_[pos_ - 1] == 'e' || src_[pos_ - 1] == 'E')))) {
      if (src_[pos_] == '.' || src_[pos_] == 'e' || src_[pos_] == 'E')
        is_float = true;
      ++pos_;
    }
    auto text = src_.substr(start, pos_ - start);
    auto n = make(expr_node::kind::literal, c);
    if (!is_float) {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc{} || p != text.data() + text.size()) {
        fail(c, "invalid number '" + std::string{text} + "'");
        return nullptr;
      }
      n->value = v;
      return n;
    }
    std::string copy{text};
    char* end = nullptr;
    double d = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size() || !(d == d)
        || d > 1.7976931348623157e308) {
      fail(c, "invalid number '" + copy + "'");
      return nullptr;
    }
    n->value = d;
    return n;
  }

  node_ptr string_literal() {
    int c = col();
    char quote = src_[pos_++];
    std::string out;
    while (pos_ < src_.size() && src_[pos_] != quote) {
      char ch = src_[pos_++];
      if (ch != '\\') {
        out += ch;
        continue;
      }
      if (pos_ >= src_.size()) break;
      char esc = src_[pos_++];
      switch (esc) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        default:
          fail(col() - 1, std::string{"unknown escape '\\"} + esc + "'");
          return nullptr;
      }
    }
    if (pos_ >= src_.size()) {
      fail(c, "unterminated string");
      return nullptr;
    }
    ++pos_;
    auto n = make(expr_node::kind::literal, c);
    n->value = std::move(out);
    return n;
  }

  std::string_view src_;
  std::vector<std::string>& refs_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  bool ok_ = true;
  diagnostic error_;
};

} // namespace

result<std::unique_ptr<expr_node>>
parse_expr_tree(std::string_view source, std::vector<std::string>& step_refs) {
  parser p{source, step_refs};
  return p.run();
}

} // namespace cerebelum::workflow
