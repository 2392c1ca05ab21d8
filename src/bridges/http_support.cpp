#include "src/bridges/http_support.hpp"

#include <algorithm>
#include <charconv>
#include <memory>

#include "actors/errc.hpp"
#include "src/bridges/error_mapping.hpp"
#include "src/bridges/request_checks.hpp"

namespace cerebelum::api {

namespace {

using actors::errc;
using actors::make_error;

/// Reads the optional string member `key` of `obj`.
caf::error read_string(const json& obj, const char* key, std::string& out) {
  auto i = obj.find(key);
  if (i == obj.end() || i->is_null()) return {};
  if (!i->is_string())
    return make_error(errc::invalid_argument, std::string{key}
                                                + ": must be a string, got "
                                                + i->type_name());
  out = i->get<std::string>();
  return {};
}

} // namespace

void send_json(http::response& res, int status, const json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = workflow::safe_dump(body);
}

namespace {

/// The store or the node is away or over capacity for now: worth retrying
/// in a second.
bool retry_soon(errc code) {
  return code == errc::unavailable || code == errc::overloaded;
}

} // namespace

json error_body(const caf::error& err) {
  auto code = actors::api_error_code(err);
  json body{{"code", actors::to_string(code)},
            {"message", actors::api_error_message(err)}};
  if (retry_soon(code)) body["retry_after_ms"] = 1000;
  return {{"error", std::move(body)}};
}

void send_error(http::response& res, const caf::error& err) {
  auto code = actors::api_error_code(err);
  if (retry_soon(code)) res.set_header("Retry-After", "1");
  send_json(res, http_status_of(code), error_body(err));
}

void send_error(http::response& res, int status, const std::string& code,
                const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

bool query_params::has(const std::string& name) const {
  return params_.count(name) > 0;
}

caf::error
query_params::only(std::initializer_list<std::string_view> names) const {
  for (const auto& [name, value] : params_) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string known;
      for (auto n : names)
        known += (known.empty() ? "" : ", ") + std::string{n};
      return make_error(errc::invalid_argument,
                        "unknown query parameter '"
                          + workflow::printable(name, 40) + "' (this route "
                          + (known.empty() ? "takes none" : "takes " + known)
                          + ")");
    }
    if (params_.count(name) > 1)
      return make_error(errc::invalid_argument,
                        name + ": given more than once");
  }
  return {};
}

caf::expected<std::string>
query_params::text(const std::string& name, std::string fallback,
                   workflow::text_rule rule, std::size_t max_bytes) const {
  auto i = params_.find(name);
  if (i == params_.end()) return fallback;
  if (auto bad = workflow::check_text(name, i->second, max_bytes, rule))
    return make_error(errc::invalid_argument, std::move(*bad));
  return i->second;
}

caf::expected<bool> query_params::flag(const std::string& name) const {
  auto i = params_.find(name);
  if (i == params_.end()) return false;
  const auto& value = i->second;
  if (value == "true" || value == "1" || value.empty()) return true;
  if (value == "false" || value == "0") return false;
  return make_error(errc::invalid_argument,
                    name + ": expected true or false, got '"
                      + workflow::printable(value) + "'");
}

caf::expected<long long> query_params::integer(const std::string& name,
                                               long long fallback) const {
  auto i = params_.find(name);
  if (i == params_.end()) return fallback;
  const auto& value = i->second;
  long long result = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(),
                                   result);
  if (ec != std::errc{} || end != value.data() + value.size())
    return make_error(errc::invalid_argument,
                      name + ": expected an integer, got '"
                        + workflow::printable(value) + "'");
  return result;
}

caf::error check_path_value(const std::string& field,
                            const std::string& value) {
  if (auto bad = workflow::check_text(field, value, workflow::max_name_bytes,
                                      workflow::text_rule::name))
    return make_error(errc::invalid_argument, std::move(*bad));
  return {};
}

caf::expected<decision_body> decision_body::parse(const std::string& text,
                                                  bool require_by) {
  auto obj = parse_json_field("body", text, json::object(), true);
  if (!obj) return std::move(obj.error());
  decision_body result;
  if (auto err = read_string(*obj, "by", result.by)) return err;
  if (auto err = read_string(*obj, "reason", result.reason)) return err;
  if (auto i = obj->find("data"); i != obj->end()) result.data = *i;
  if (require_by)
    if (auto err = require_non_empty("by", result.by)) return err;
  return result;
}

void get_route(http::server& server, const std::string& pattern,
               sync_handler handler) {
  server.route("GET", pattern,
               [handler = std::move(handler)](const http::request& req,
                                              http::responder answer) {
                 http::response res;
                 handler(req, res);
                 answer.send(std::move(res));
               });
}

bool is_multipart(const http::request& req) {
  return req.header("Content-Type").rfind("multipart/form-data", 0) == 0;
}

void refuse_multipart(http::response& res) {
  send_error(res, 415, "unsupported_media_type",
             "body: multipart/form-data is not accepted; send the JSON "
             "itself as the body");
}

void post_route(http::server& server, const std::string& pattern,
                body_handler handler) {
  server.route("POST", pattern,
               [handler = std::move(handler)](const http::request& req,
                                              http::responder answer) {
                 http::response res;
                 if (is_multipart(req))
                   refuse_multipart(res);
                 else
                   handler(req, req.body, res);
                 answer.send(std::move(res));
               });
}

} // namespace cerebelum::api
