#include "src/api/http_support.hpp"

#include <charconv>

#include "actors/errc.hpp"
#include "src/api/error_mapping.hpp"
#include "src/api/request_checks.hpp"

namespace cerebelum::api {

namespace {

using actors::errc;
using actors::make_error;

/// The error code for statuses httplib sets without a handler.
std::string code_of_status(int status) {
  switch (status) {
    case 400: return "invalid_argument";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 413: return "payload_too_large";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "bad_request";
  }
}

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

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, const caf::error& err) {
  auto code = actors::api_error_code(err);
  send_error(res, http_status_of(code), actors::to_string(code),
             actors::api_error_message(err));
}

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

caf::expected<bool> query_bool(const httplib::Request& req,
                               const std::string& name) {
  if (!req.has_param(name.c_str())) return false;
  auto value = req.get_param_value(name.c_str());
  if (value == "true" || value == "1" || value.empty()) return true;
  if (value == "false" || value == "0") return false;
  return make_error(errc::invalid_argument,
                    name + ": expected true or false, got '" + value + "'");
}

caf::expected<long long> query_int(const httplib::Request& req,
                                   const std::string& name,
                                   long long fallback) {
  if (!req.has_param(name.c_str())) return fallback;
  auto value = req.get_param_value(name.c_str());
  long long result = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(),
                                   result);
  if (ec != std::errc{} || end != value.data() + value.size())
    return make_error(errc::invalid_argument,
                      name + ": expected an integer, got '" + value + "'");
  return result;
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

void install_error_handlers(httplib::Server& server,
                            std::size_t max_body_bytes) {
  server.set_error_handler(
    [max_body_bytes](const httplib::Request& req, httplib::Response& res) {
      // Handlers that replied already set a JSON body.
      if (!res.body.empty()) return;
      std::string message;
      if (res.status == 413)
        message = "request body exceeds " + std::to_string(max_body_bytes)
                  + " bytes";
      else if (res.status == 404)
        message = "no route " + req.method + " " + req.path;
      else
        message = "HTTP " + std::to_string(res.status);
      send_error(res, res.status, code_of_status(res.status), message);
    });
  server.set_exception_handler(
    [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
        // keep the generic message
      }
      send_error(res, 500, "internal", what);
    });
}

} // namespace cerebelum::api
