#include "workflow/input_schema.hpp"

namespace cerebelum::workflow {

namespace {

bool has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer")
    return v.is_number_integer()
           || (v.is_number_float()
               && v.get<double>()
                    == static_cast<double>(
                      static_cast<std::int64_t>(v.get<double>())));
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  return true; // an unknown type name constrains nothing
}

class checker {
 public:
  std::optional<diagnostic> error;

  void check(const json& schema, const json& v, const std::string& path,
             int depth) {
    if (error || !schema.is_object() || depth > 64) return;
    if (!check_type(schema, v, path)) return;
    if (auto it = schema.find("enum");
        it != schema.end() && it->is_array()
        && std::find(it->begin(), it->end(), v) == it->end())
      return fail(path, "is not one of the allowed values");
    check_bounds(schema, v, path);
    if (v.is_object()) check_object(schema, v, path, depth);
    if (v.is_array()) {
      auto items = schema.find("items");
      if (items != schema.end())
        for (std::size_t i = 0; i < v.size(); ++i)
          check(*items, v[i], path + "[" + std::to_string(i) + "]", depth + 1);
    }
  }

 private:
  void fail(const std::string& path, const std::string& what) {
    if (!error) error = diagnostic{{}, 0, 0, {}, path + ": " + what};
  }

  bool check_type(const json& schema, const json& v, const std::string& path) {
    auto t = schema.find("type");
    if (t == schema.end()) return true;
    if (t->is_string()) {
      if (has_type(v, t->get<std::string>())) return true;
      fail(path,
           "expected " + t->get<std::string>() + ", got " + v.type_name());
      return false;
    }
    if (!t->is_array()) return true;
    for (const auto& name : *t)
      if (name.is_string() && has_type(v, name.get<std::string>())) return true;
    fail(path, std::string{"expected one of "} + t->dump() + ", got "
                 + v.type_name());
    return false;
  }

  static std::optional<double> number(const json& schema, const char* key) {
    auto it = schema.find(key);
    if (it == schema.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
  }

  void check_bounds(const json& schema, const json& v,
                    const std::string& path) {
    if (v.is_number()) {
      auto x = v.get<double>();
      if (auto m = number(schema, "minimum"); m && x < *m)
        fail(path, "is below the minimum " + json(*m).dump());
      if (auto m = number(schema, "maximum"); m && x > *m)
        fail(path, "is above the maximum " + json(*m).dump());
    }
    auto size_check = [&](double size, const char* lo, const char* hi) {
      if (auto m = number(schema, lo); m && size < *m)
        fail(path, std::string{"violates "} + lo);
      if (auto m = number(schema, hi); m && size > *m)
        fail(path, std::string{"violates "} + hi);
    };
    if (v.is_string())
      size_check(static_cast<double>(v.get_ref<const std::string&>().size()),
                 "minLength", "maxLength");
    if (v.is_array())
      size_check(static_cast<double>(v.size()), "minItems", "maxItems");
  }

  void check_object(const json& schema, const json& v, const std::string& path,
                    int depth) {
    if (auto req = schema.find("required");
        req != schema.end() && req->is_array())
      for (const auto& name : *req)
        if (name.is_string() && !v.contains(name.get<std::string>()))
          return fail(path, "missing required field '" + name.get<std::string>()
                              + "'");
    auto props = schema.find("properties");
    bool closed = schema.value("additionalProperties", true) == false;
    for (const auto& [key, value] : v.items()) {
      if (props != schema.end() && props->is_object() && props->contains(key))
        check((*props)[key], value, path + "." + key, depth + 1);
      else if (closed)
        fail(path, "unexpected field '" + key + "'");
    }
  }
};

} // namespace

result<ok_t> check_against_schema(const json& schema, const json& value) {
  checker c;
  try {
    c.check(schema, value, "input", 0);
  } catch (const std::exception& e) {
    return diagnostic{{}, 0, 0, {}, std::string{"input: "} + e.what()};
  }
  if (c.error) return *c.error;
  return ok_t{};
}

result<ok_t> check_input(const definition& def, const json& input) {
  if (def.input_schema.is_null()) return ok_t{};
  auto r = check_against_schema(def.input_schema, input);
  if (!r) {
    auto d = r.error();
    d.file = def.file;
    return d;
  }
  return r;
}

} // namespace cerebelum::workflow
