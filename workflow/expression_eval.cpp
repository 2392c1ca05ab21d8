// Evaluation of expression trees. Never throws: every fault is a diagnostic.
//
// Paths (`steps.a.b[0]`) are resolved by pointer into the scope: only the
// value at the end of a path is copied, never the whole `steps` object on
// the way. Every value built here (a concatenation, a list or object
// literal, `upper`/`lower`) is measured against `limits::max_value_bytes`
// and `limits::max_value_depth`, so a definition cannot grow a value
// without bound (`steps.s + steps.s` doubling along a chain of steps).
#include <algorithm>
#include <cmath>
#include <limits>

#include "workflow/expression_ast.hpp"
#include "workflow/limits.hpp"

namespace cerebelum::workflow {

namespace {

using r_json = result<json>;
using r_ref = result<const json*>;
using kind = expr_node::kind;

diagnostic err(const expr_node& n, std::string msg) {
  return diagnostic{{}, 0, static_cast<int>(n.column), {}, std::move(msg)};
}

const char* type_name(const json& v) {
  return v.type_name();
}

/// The error for a value `what` built by node `n` over the value limits.
std::optional<diagnostic> over_limits(const expr_node& n, const json& v,
                                      const char* what) {
  if (auto why = limits::check_value(v))
    return err(n, std::string{what} + ": " + *why);
  return std::nullopt;
}

/// Integer arithmetic with overflow detection; falls back to doubles.
r_json arith(const expr_node& n, const json& a, const json& b) {
  if (!a.is_number() || !b.is_number())
    return err(n, std::string{"operator '"} + op_name(n.op)
                    + "' needs numbers, got " + type_name(a) + " and "
                    + type_name(b));
  bool ints = a.is_number_integer() && b.is_number_integer();
  if (ints) {
    auto x = a.get<std::int64_t>();
    auto y = b.get<std::int64_t>();
    std::int64_t r = 0;
    switch (n.op) {
      case expr_op::add:
        if (!__builtin_add_overflow(x, y, &r)) return r;
        break;
      case expr_op::sub:
        if (!__builtin_sub_overflow(x, y, &r)) return r;
        break;
      case expr_op::mul:
        if (!__builtin_mul_overflow(x, y, &r)) return r;
        break;
      case expr_op::div:
        if (y == 0) return err(n, "division by zero");
        if (y == -1 && x == std::numeric_limits<std::int64_t>::min()) break;
        if (x % y == 0) return x / y;
        break;
      case expr_op::mod:
        if (y == 0) return err(n, "division by zero");
        if (y == -1) return std::int64_t{0};
        return x % y;
      default: break;
    }
  }
  auto x = a.get<double>();
  auto y = b.get<double>();
  double r = 0;
  switch (n.op) {
    case expr_op::add: r = x + y; break;
    case expr_op::sub: r = x - y; break;
    case expr_op::mul: r = x * y; break;
    case expr_op::div:
      if (y == 0) return err(n, "division by zero");
      r = x / y;
      break;
    case expr_op::mod:
      if (y == 0) return err(n, "division by zero");
      r = std::fmod(x, y);
      break;
    default: return err(n, "not an arithmetic operator");
  }
  if (!std::isfinite(r)) return err(n, "arithmetic overflow");
  return r;
}

r_json add(const expr_node& n, const json& a, const json& b) {
  if (a.is_string() && b.is_string()) {
    const auto& x = a.get_ref<const std::string&>();
    const auto& y = b.get_ref<const std::string&>();
    // Refused before it is built: a doubling chain never allocates more
    // than twice the limit.
    if (x.size() + y.size() > limits::max_value_bytes)
      return err(n, "value too large: '+' would build a string of "
                      + std::to_string(x.size() + y.size())
                      + " bytes, more than "
                      + std::to_string(limits::max_value_bytes)
                      + " (limit max_value_bytes)");
    json out = x + y;
    if (auto e = over_limits(n, out, "'+'")) return *e;
    return out;
  }
  if (a.is_array() && b.is_array()) {
    auto sa = limits::measure(a);
    auto sb = limits::measure(b);
    if (sa.bytes + sb.bytes > limits::max_value_bytes + 2)
      return err(n, "value too large: '+' would build a list of more than "
                      + std::to_string(limits::max_value_bytes)
                      + " bytes of JSON (limit max_value_bytes)");
    json out = a;
    for (const auto& v : b)
      out.push_back(v);
    if (auto e = over_limits(n, out, "'+'")) return *e;
    return out;
  }
  return arith(n, a, b);
}

r_json compare(const expr_node& n, const json& a, const json& b) {
  if (n.op == expr_op::eq) return a == b;
  if (n.op == expr_op::ne) return a != b;
  int c = 0;
  if (a.is_number() && b.is_number()) {
    auto x = a.get<double>();
    auto y = b.get<double>();
    if (a.is_number_integer() && b.is_number_integer()) {
      auto xi = a.get<std::int64_t>();
      auto yi = b.get<std::int64_t>();
      c = xi < yi ? -1 : (xi > yi ? 1 : 0);
    } else {
      c = x < y ? -1 : (x > y ? 1 : 0);
    }
  } else if (a.is_string() && b.is_string()) {
    c = a.get_ref<const std::string&>().compare(
      b.get_ref<const std::string&>());
  } else {
    return err(n, std::string{"cannot order "} + type_name(a) + " and "
                    + type_name(b));
  }
  switch (n.op) {
    case expr_op::lt: return c < 0;
    case expr_op::le: return c <= 0;
    case expr_op::gt: return c > 0;
    default: return c >= 0;
  }
}

r_json contains(const expr_node& n, const json& hay, const json& needle) {
  if (hay.is_array())
    return std::find(hay.begin(), hay.end(), needle) != hay.end();
  if (hay.is_string() && needle.is_string())
    return hay.get_ref<const std::string&>().find(
             needle.get_ref<const std::string&>())
           != std::string::npos;
  if (hay.is_object() && needle.is_string())
    return hay.contains(needle.get<std::string>());
  return err(n, std::string{"cannot look for a "} + type_name(needle) + " in a "
                  + type_name(hay));
}

r_json negate(const expr_node& n, const json& v) {
  if (!v.is_number())
    return err(n, std::string{"cannot negate a "} + type_name(v));
  expr_node sub = n;
  sub.op = expr_op::sub;
  return arith(sub, json(0), v);
}

class evaluator {
 public:
  evaluator(const expr_tree& t, const eval_scope& s) : t_(t), s_(s) {}

  r_json eval(std::uint32_t i) {
    const auto& n = t_.nodes[i];
    switch (n.k) {
      case kind::literal: return t_.literals[n.text];
      case kind::variable:
      case kind::member:
      case kind::index: return eval_path(i);
      case kind::unary: {
        auto v = eval(i - 1);
        if (!v) return v;
        if (n.op == expr_op::not_) {
          if (!v->is_boolean())
            return err(n, std::string{"'not' needs a boolean, got "}
                            + type_name(*v));
          return !v->get<bool>();
        }
        return negate(n, *v);
      }
      case kind::binary: return eval_binary(i);
      case kind::call: return eval_call(i);
      case kind::list: {
        json out = json::array();
        for (auto c : t_.children(i)) {
          auto v = eval(c);
          if (!v) return v;
          out.push_back(std::move(*v));
        }
        if (auto e = over_limits(n, out, "list")) return *e;
        return out;
      }
      case kind::object: {
        json out = json::object();
        auto kids = t_.children(i);
        for (std::size_t c = 0; c + 1 < kids.size(); c += 2) {
          auto v = eval(kids[c + 1]);
          if (!v) return v;
          const auto& key = t_.literals[t_.nodes[kids[c]].text];
          out[key.get<std::string>()] = std::move(*v);
        }
        if (auto e = over_limits(n, out, "object")) return *e;
        return out;
      }
    }
    return err(n, "unknown expression node");
  }

 private:
  /// Whether node `i` is a path from a root variable.
  bool is_path(std::uint32_t i) const {
    while (true) {
      const auto& n = t_.nodes[i];
      if (n.k == kind::variable) return true;
      if (n.k == kind::member) {
        i = i - 1;
      } else if (n.k == kind::index) {
        i = t_.first_of_two(i);
      } else {
        return false;
      }
    }
  }

  /// The value a path points to, inside the scope.
  r_ref ref(std::uint32_t i) {
    const auto& n = t_.nodes[i];
    if (n.k == kind::variable) {
      auto name = t_.name(n);
      const json* v = nullptr;
      if (name == "input")
        v = s_.input;
      else if (name == "steps")
        v = s_.steps;
      else if (name == "error")
        v = s_.error;
      else if (name == "item")
        v = s_.item;
      else if (name == "index")
        v = s_.index;
      if (v == nullptr)
        return err(n, "'" + std::string{name} + "' is not available here");
      return v;
    }
    if (n.k == kind::member) {
      auto base = ref(i - 1);
      if (!base) return base;
      return member(n, **base);
    }
    auto base = ref(t_.first_of_two(i));
    if (!base) return base;
    auto idx = eval(i - 1);
    if (!idx) return idx.error();
    return element(n, **base, *idx);
  }

  r_ref member(const expr_node& n, const json& base) {
    auto name = std::string{t_.name(n)};
    if (!base.is_object())
      return err(n, "cannot read field '" + name + "' of a " + type_name(base));
    auto it = base.find(name);
    if (it == base.end()) return err(n, "no field '" + name + "'");
    return &*it;
  }

  static r_ref element(const expr_node& n, const json& base, const json& idx) {
    if (base.is_array() && idx.is_number_integer()) {
      auto i = idx.get<std::int64_t>();
      auto size = static_cast<std::int64_t>(base.size());
      if (i < 0) i += size;
      if (i < 0 || i >= size)
        return err(n, "index " + idx.dump() + " out of range");
      return &base[static_cast<std::size_t>(i)];
    }
    if (base.is_object() && idx.is_string()) {
      auto it = base.find(idx.get<std::string>());
      if (it == base.end())
        return err(n, "no field '" + idx.get<std::string>() + "'");
      return &*it;
    }
    return err(n, std::string{"cannot index a "} + type_name(base) + " with a "
                    + type_name(idx));
  }

  r_json eval_path(std::uint32_t i) {
    if (is_path(i)) {
      auto v = ref(i);
      if (!v) return v.error();
      return **v;
    }
    // A member or index of a computed value (`[1, 2][0]`).
    const auto& n = t_.nodes[i];
    auto base = eval(n.k == kind::member ? i - 1 : t_.first_of_two(i));
    if (!base) return base;
    r_ref found = n.k == kind::member ? member(n, *base) : r_ref{nullptr};
    if (n.k == kind::index) {
      auto idx = eval(i - 1);
      if (!idx) return idx;
      found = element(n, *base, *idx);
    }
    if (!found) return found.error();
    return **found;
  }

  r_json eval_logic(std::uint32_t i) {
    const auto& n = t_.nodes[i];
    auto a = eval(t_.first_of_two(i));
    if (!a) return a;
    if (!a->is_boolean())
      return err(n, std::string{"'"} + op_name(n.op) + "' needs booleans, got "
                      + type_name(*a));
    bool short_circuit = n.op == expr_op::and_ ? !a->get<bool>()
                                               : a->get<bool>();
    if (short_circuit) return *a;
    auto b = eval(i - 1);
    if (!b) return b;
    if (!b->is_boolean())
      return err(n, std::string{"'"} + op_name(n.op) + "' needs booleans, got "
                      + type_name(*b));
    return *b;
  }

  r_json eval_binary(std::uint32_t i) {
    const auto& n = t_.nodes[i];
    if (n.op == expr_op::and_ || n.op == expr_op::or_) return eval_logic(i);
    auto a = eval(t_.first_of_two(i));
    if (!a) return a;
    auto b = eval(i - 1);
    if (!b) return b;
    switch (n.op) {
      case expr_op::add: return add(n, *a, *b);
      case expr_op::sub:
      case expr_op::mul:
      case expr_op::div:
      case expr_op::mod: return arith(n, *a, *b);
      case expr_op::in: return contains(n, *b, *a);
      default: return compare(n, *a, *b);
    }
  }

  r_json eval_call(std::uint32_t i) {
    const auto& n = t_.nodes[i];
    auto name = std::string{t_.name(n)};
    std::vector<json> args;
    for (auto c : t_.children(i)) {
      auto v = eval(c);
      if (!v) return v;
      args.push_back(std::move(*v));
    }
    auto arity = [&](std::size_t want) -> bool {
      return args.size() == want;
    };
    if (name == "now") {
      if (!arity(0)) return err(n, "now() takes no arguments");
      return s_.now_ms;
    }
    if (name == "contains") {
      if (!arity(2)) return err(n, "contains() takes two arguments");
      return contains(n, args[0], args[1]);
    }
    if (!arity(1)) return err(n, name + "() takes one argument");
    const json& a = args[0];
    if (name == "len") {
      if (a.is_string() || a.is_array() || a.is_object())
        return static_cast<std::int64_t>(
          a.is_string() ? a.get_ref<const std::string&>().size() : a.size());
      return err(n, std::string{"len() of a "} + type_name(a));
    }
    if (!a.is_string())
      return err(n, name + "() needs a string, got " + type_name(a));
    json out = a.get<std::string>();
    auto& str = out.get_ref<std::string&>();
    bool up = name == "upper";
    std::transform(str.begin(), str.end(), str.begin(), [up](char c) {
      if (up && c >= 'a' && c <= 'z') return static_cast<char>(c - 32);
      if (!up && c >= 'A' && c <= 'Z') return static_cast<char>(c + 32);
      return c;
    });
    if (auto e = over_limits(n, out, up ? "upper()" : "lower()")) return *e;
    return out;
  }

  const expr_tree& t_;
  const eval_scope& s_;
};

} // namespace

result<json> eval_expr_tree(const expr_tree& tree, const eval_scope& scope) {
  try {
    evaluator ev{tree, scope};
    return ev.eval(tree.root());
  } catch (const std::exception& e) {
    // nlohmann::json reports misuse by exceptions; none is expected here,
    // but an escaped exception would break the "never throws" contract.
    return err(tree.nodes.back(),
               std::string{"internal evaluation fault: "} + e.what());
  }
}

} // namespace cerebelum::workflow
