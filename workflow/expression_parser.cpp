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

#include "workflow/expression_ast.hpp"
#include "workflow/limits.hpp"

namespace cerebelum::workflow {

namespace {

const char* const roots[] = {"input", "steps", "error", "item", "index"};
const char* const functions[] = {"len", "lower", "upper", "contains", "now"};

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}

using kind = expr_node::kind;

/// Appends nodes in post-order: every parse function leaves exactly one
/// subtree (its result) at the end of `tree_.nodes`, or sets `ok_ = false`.
class parser {
 public:
  explicit parser(std::string_view src) : src_(src) {
    tree_.source = std::string{src};
  }

  result<expr_tree> run() {
    if (src_.size() > limits::max_expression_bytes)
      return fail(1, "expression too long (over "
                       + std::to_string(limits::max_expression_bytes)
                       + " bytes; limit max_expression_bytes)");
    parse_or();
    if (!ok_) return error_;
    skip_ws();
    if (pos_ != src_.size()) return fail(col(), "unexpected trailing input");
    tree_.nodes.shrink_to_fit();
    tree_.literals.shrink_to_fit();
    return std::move(tree_);
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

  void bad(std::string msg) {
    fail(col(), std::move(msg));
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

  /// Appends a node over the last `arity` subtrees.
  void emit(kind k, int column, std::uint32_t arity = 0,
            expr_op op = expr_op::add) {
    auto& nodes = tree_.nodes;
    expr_node n;
    n.k = k;
    n.op = op;
    n.column = static_cast<std::uint32_t>(column);
    n.arity = arity;
    std::uint32_t height = 0;
    auto at = nodes.size();
    for (std::uint32_t c = 0; c < arity; ++c) {
      const auto& child = nodes[at - 1];
      n.size += child.size;
      height = std::max<std::uint32_t>(height, child.height);
      at -= child.size;
    }
    if (height + 1 > static_cast<std::uint32_t>(limits::max_expression_depth)) {
      fail(column, "expression nested too deeply (a tree of more than "
                     + std::to_string(limits::max_expression_depth)
                     + " levels; limit max_expression_depth)");
      return;
    }
    n.height = static_cast<std::uint16_t>(height + 1);
    nodes.push_back(n);
  }

  void emit_named(kind k, int column, std::size_t name_at, std::size_t name_len,
                  std::uint32_t arity = 0) {
    emit(k, column, arity);
    if (!ok_) return;
    tree_.nodes.back().text = static_cast<std::uint32_t>(name_at);
    tree_.nodes.back().text_len = static_cast<std::uint32_t>(name_len);
  }

  void emit_literal(int column, json value) {
    emit(kind::literal, column);
    if (!ok_) return;
    tree_.nodes.back().text = static_cast<std::uint32_t>(tree_.literals.size());
    tree_.literals.push_back(std::move(value));
  }

  /// Counts one level of nesting: every parenthesis, bracket, brace, index
  /// and argument list enters `parse_or` once; every prefix operator counts
  /// one more. Bounds the recursion of this parser.
  struct depth_guard {
    parser& p;
    explicit depth_guard(parser& self) : p(self) {
      ++p.depth_;
    }
    ~depth_guard() {
      --p.depth_;
    }
  };

  bool too_deep() {
    // The whole expression is the first `parse_or`: level 0.
    if (depth_ - 1 <= limits::max_expression_nesting) return false;
    bad("expression nested too deeply (more than "
        + std::to_string(limits::max_expression_nesting)
        + " levels of parentheses, brackets or prefix operators; limit "
          "max_expression_nesting)");
    return true;
  }

  void parse_or() {
    depth_guard g{*this};
    if (too_deep()) return;
    parse_and();
    while (ok_) {
      skip_ws();
      int c = col();
      if (!accept("or") && !accept("||")) break;
      parse_and();
      if (!ok_) return;
      emit(kind::binary, c, 2, expr_op::or_);
    }
  }

  void parse_and() {
    parse_not();
    while (ok_) {
      skip_ws();
      int c = col();
      if (!accept("and") && !accept("&&")) break;
      parse_not();
      if (!ok_) return;
      emit(kind::binary, c, 2, expr_op::and_);
    }
  }

  void parse_not() {
    skip_ws();
    int c = col();
    bool bang = peek('!') && src_.substr(pos_, 2) != "!=";
    if (bang || accept("not")) {
      if (bang) ++pos_;
      depth_guard g{*this};
      if (too_deep()) return;
      parse_not();
      if (!ok_) return;
      emit(kind::unary, c, 1, expr_op::not_);
      return;
    }
    parse_cmp();
  }

  void parse_cmp() {
    parse_add();
    if (!ok_) return;
    skip_ws();
    int c = col();
    static const std::pair<std::string_view, expr_op> ops[]
      = {{"==", expr_op::eq}, {"!=", expr_op::ne}, {"<=", expr_op::le},
         {">=", expr_op::ge}, {"<", expr_op::lt},  {">", expr_op::gt},
         {"in", expr_op::in}};
    for (const auto& [tok, op] : ops) {
      if (accept(tok)) {
        parse_add();
        if (!ok_) return;
        emit(kind::binary, c, 2, op);
        return;
      }
    }
  }

  void parse_add() {
    parse_mul();
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
      parse_mul();
      if (!ok_) return;
      emit(kind::binary, c, 2, op);
    }
  }

  void parse_mul() {
    parse_unary();
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
      parse_unary();
      if (!ok_) return;
      emit(kind::binary, c, 2, op);
    }
  }

  void parse_unary() {
    skip_ws();
    int c = col();
    if (accept("-")) {
      depth_guard g{*this};
      if (too_deep()) return;
      parse_unary();
      if (!ok_) return;
      emit(kind::unary, c, 1, expr_op::neg);
      return;
    }
    parse_postfix();
  }

  void parse_postfix() {
    parse_primary();
    while (ok_) {
      skip_ws();
      int c = col();
      if (accept(".")) {
        skip_ws();
        auto at = pos_;
        auto name = ident();
        if (name.empty()) return bad("expected a field name after '.'");
        emit_named(kind::member, c, at, name.size(), 1);
      } else if (accept("[")) {
        parse_or();
        if (!ok_) return;
        if (!accept("]")) return bad("expected ']'");
        emit(kind::index, c, 2);
      } else {
        break;
      }
    }
  }

  std::string_view ident() {
    if (pos_ >= src_.size() || !is_ident_start(src_[pos_])) return {};
    auto start = pos_;
    while (pos_ < src_.size() && is_ident_char(src_[pos_]))
      ++pos_;
    return src_.substr(start, pos_ - start);
  }

  void parse_primary() {
    skip_ws();
    int c = col();
    if (pos_ >= src_.size()) return bad("unexpected end of expression");
    char ch = src_[pos_];
    if (ch >= '0' && ch <= '9') return number();
    if (ch == '"' || ch == '\'') return string_literal();
    if (accept("(")) {
      parse_or();
      if (!ok_) return;
      if (!accept(")")) return bad("expected ')'");
      return;
    }
    if (accept("[")) return list(c);
    if (accept("{")) return object(c);
    if (!is_ident_start(ch))
      return bad(std::string{"unexpected character '"} + ch + "'");
    auto at = pos_;
    auto name = ident();
    if (name == "true" || name == "false" || name == "null")
      return emit_literal(c, name == "null" ? json(nullptr)
                                            : json(name == "true"));
    if (peek('(')) return call(at, name, c);
    if (std::find(std::begin(roots), std::end(roots), name)
        == std::end(roots)) {
      fail(c, "unknown name '" + std::string{name}
                + "' (use input, steps, error, item or index)");
      return;
    }
    emit_named(kind::variable, c, at, name.size());
  }

  void call(std::size_t at, std::string_view name, int c) {
    if (std::find(std::begin(functions), std::end(functions), name)
        == std::end(functions)) {
      fail(c, "unknown function '" + std::string{name} + "'");
      return;
    }
    accept("(");
    std::uint32_t arity = 0;
    if (!accept(")")) {
      do {
        parse_or();
        if (!ok_) return;
        ++arity;
      } while (accept(","));
      if (!accept(")")) return bad("expected ')' or ','");
    }
    emit_named(kind::call, c, at, name.size(), arity);
  }

  void list(int c) {
    std::uint32_t arity = 0;
    if (!accept("]")) {
      do {
        parse_or();
        if (!ok_) return;
        ++arity;
      } while (accept(","));
      if (!accept("]")) return bad("expected ']' or ','");
    }
    emit(kind::list, c, arity);
  }

  void object(int c) {
    std::uint32_t arity = 0;
    if (!accept("}")) {
      do {
        skip_ws();
        if (peek('"') || peek('\'')) {
          string_literal();
          if (!ok_) return;
        } else {
          int kc = col();
          auto key = ident();
          if (key.empty()) return bad("expected an object key");
          emit_literal(kc, std::string{key});
        }
        if (!accept(":")) return bad("expected ':' after object key");
        parse_or();
        if (!ok_) return;
        arity += 2;
      } while (accept(","));
      if (!accept("}")) return bad("expected '}' or ','");
    }
    emit(kind::object, c, arity);
  }

  void number() {
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
    if (!is_float) {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc{} || p != text.data() + text.size()) {
        fail(c, "invalid number '" + std::string{text} + "'");
        return;
      }
      return emit_literal(c, v);
    }
    std::string copy{text};
    char* end = nullptr;
    double d = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size() || !(d == d)
        || d > 1.7976931348623157e308) {
      fail(c, "invalid number '" + copy + "'");
      return;
    }
    emit_literal(c, d);
  }

  void string_literal() {
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
          return;
      }
    }
    if (pos_ >= src_.size()) {
      fail(c, "unterminated string");
      return;
    }
    ++pos_;
    emit_literal(c, std::move(out));
  }

  std::string_view src_;
  expr_tree tree_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  bool ok_ = true;
  diagnostic error_;
};

} // namespace

result<expr_tree> parse_expr_tree(std::string_view source) {
  parser p{source};
  return p.run();
}

} // namespace cerebelum::workflow
