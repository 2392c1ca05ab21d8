// Evaluation of expression trees. Never throws: every fault is a diagnostic.
#include <algorithm>
#include <cmath>
#include <limits>

#include "src/workflow/expression_ast.hpp"

namespace cerebelum::workflow {

namespace {

using r_json = result<json>;

diagnostic err(const expr_node& n, std::string msg) {
  return diagnostic{{}, 0, n.column, {}, std::move(msg)};
}

const char* type_name(const json& v) {
  return v.type_name();
}

r_json eval_variable(const expr_node& n, const eval_scope& s) {
  const json* v = nullptr;
  if (n.name == "input")
    v = s.input;
  else if (n.name == "steps")
    v = s.steps;
  else if (n.name == "error")
    v = s.error;
  else if (n.name == "item")
    v = s.item;
  else if (n.name == "index")
    v = s.index;
  if (v == nullptr) return err(n, "'" + n.name + "' is not available here");
  return *v;
}

r_json eval_member(const expr_node& n, const json& base) {
  if (!base.is_object())
    return err(n, "cannot read field '" + n.name + "' of a " + type_name(base));
  auto it = base.find(n.name);
  if (it == base.end()) return err(n, "no field '" + n.name + "'");
  return *it;
}

r_json eval_index(const expr_node& n, const json& base, const json& idx) {
  if (base.is_array() && idx.is_number_integer()) {
    auto i = idx.get<std::int64_t>();
    auto size = static_cast<std::int64_t>(base.size());
    if (i < 0) i += size;
    if (i < 0 || i >= size)
      return err(n, "index " + idx.dump() + " out of range");
    return base[static_cast<std::size_t>(i)];
  }
  if (base.is_object() && idx.is_string()) {
    auto it = base.find(idx.get<std::string>());
    if (it == base.end())
      return err(n, "no field '" + idx.get<std::string>() + "'");
    return *it;
  }
  return err(n, std::string{"cannot index a "} + type_name(base) + " with a "
                  + type_name(idx));
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
  if (a.is_string() && b.is_string())
    return a.get<std::string>() + b.get<std::string>();
  if (a.is_array() && b.is_array()) {
    json out = a;
    for (const auto& v : b)
      out.push_back(v);
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
  expr_node sub;
  sub.op = expr_op::sub;
  sub.column = n.column;
  return arith(sub, json(0), v);
}

r_json eval_binary(const expr_node& n, const eval_scope& s);
r_json eval_call(const expr_node& n, const eval_scope& s);

r_json eval_node(const expr_node& n, const eval_scope& s) {
  using k = expr_node::kind;
  switch (n.k) {
    case k::literal: return n.value;
    case k::variable: return eval_variable(n, s);
    case k::member: {
      auto base = eval_node(*n.children[0], s);
      if (!base) return base;
      return eval_member(n, *base);
    }
    case k::index: {
      auto base = eval_node(*n.children[0], s);
      if (!base) return base;
      auto idx = eval_node(*n.children[1], s);
      if (!idx) return idx;
      return eval_index(n, *base, *idx);
    }
    case k::unary: {
      auto v = eval_node(*n.children[0], s);
      if (!v) return v;
      if (n.op == expr_op::not_) {
        if (!v->is_boolean())
          return err(n, std::string{"'not' needs a boolean, got "}
                          + type_name(*v));
        return !v->get<bool>();
      }
      return negate(n, *v);
    }
    case k::binary: return eval_binary(n, s);
    case k::call: return eval_call(n, s);
    case k::list: {
      json out = json::array();
      for (const auto& c : n.children) {
        auto v = eval_node(*c, s);
        if (!v) return v;
        out.push_back(std::move(*v));
      }
      return out;
    }
    case k::object: {
      json out = json::object();
      for (std::size_t i = 0; i < n.children.size(); ++i) {
        auto v = eval_node(*n.children[i], s);
        if (!v) return v;
        out[n.keys[i]] = std::move(*v);
      }
      return out;
    }
  }
  return err(n, "unknown expression node");
}

r_json eval_logic(const expr_node& n, const eval_scope& s) {
  auto a = eval_node(*n.children[0], s);
  if (!a) return a;
  if (!a->is_boolean())
    return err(n, std::string{"'"} + op_name(n.op) + "' needs booleans, got "
                    + type_name(*a));
  bool short_circuit = n.op == expr_op::and_ ? !a->get<bool>() : a->get<bool>();
  if (short_circuit) return *a;
  auto b = eval_node(*n.children[1], s);
  if (!b) return b;
  if (!b->is_boolean())
    return err(n, std::string{"'"} + op_name(n.op) + "' needs booleans, got "
                    + type_name(*b));
  return *b;
}

r_json eval_binary(const expr_node& n, const eval_scope& s) {
  if (n.op == expr_op::and_ || n.op == expr_op::or_) return eval_logic(n, s);
  auto a = eval_node(*n.children[0], s);
  if (!a) return a;
  auto b = eval_node(*n.children[1], s);
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

r_json eval_call(const expr_node& n, const eval_scope& s) {
  std::vector<json> args;
  for (const auto& c : n.children) {
    auto v = eval_node(*c, s);
    if (!v) return v;
    args.push_back(std::move(*v));
  }
  auto arity = [&](std::size_t want) -> bool {
    return args.size() == want;
  };
  if (n.name == "now") {
    if (!arity(0)) return err(n, "now() takes no arguments");
    return s.now_ms;
  }
  if (n.name == "contains") {
    if (!arity(2)) return err(n, "contains() takes two arguments");
    return contains(n, args[0], args[1]);
  }
  if (!arity(1)) return err(n, n.name + "() takes one argument");
  const json& a = args[0];
  if (n.name == "len") {
    if (a.is_string() || a.is_array() || a.is_object())
      return static_cast<std::int64_t>(
        a.is_string() ? a.get_ref<const std::string&>().size() : a.size());
    return err(n, std::string{"len() of a "} + type_name(a));
  }
  if (!a.is_string())
    return err(n, n.name + "() needs a string, got " + type_name(a));
  auto str = a.get<std::string>();
  bool up = n.name == "upper";
  std::transform(str.begin(), str.end(), str.begin(), [up](char c) {
    if (up && c >= 'a' && c <= 'z') return static_cast<char>(c - 32);
    if (!up && c >= 'A' && c <= 'Z') return static_cast<char>(c + 32);
    return c;
  });
  return str;
}

} // namespace

result<json> eval_expr_tree(const expr_node& node, const eval_scope& scope) {
  try {
    return eval_node(node, scope);
  } catch (const std::exception& e) {
    // nlohmann::json reports misuse by exceptions; none is expected here,
    // but an escaped exception would break the "never throws" contract.
    return err(node, std::string{"internal evaluation fault: "} + e.what());
  }
}

} // namespace cerebelum::workflow
