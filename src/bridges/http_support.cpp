#include "src/bridges/http_support.hpp"

#include <algorithm>
#include <charconv>
#include <memory>
#include <regex>

#include "actors/errc.hpp"
#include "src/bridges/error_mapping.hpp"
#include "src/bridges/request_checks.hpp"

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
    case 429: return "overloaded";
    case 415: return "unsupported_media_type";
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
  res.set_content(workflow::safe_dump(body), "application/json");
}

void send_error(httplib::Response& res, const caf::error& err) {
  auto code = actors::api_error_code(err);
  if (code == errc::unavailable || code == errc::overloaded) {
    // The store or the node is away or over capacity for now: worth
    // retrying in a second.
    res.set_header("Retry-After", "1");
    send_json(res, http_status_of(code),
              {{"error",
                {{"code", actors::to_string(code)},
                 {"message", actors::api_error_message(err)},
                 {"retry_after_ms", 1000}}}});
    return;
  }
  send_error(res, http_status_of(code), actors::to_string(code),
             actors::api_error_message(err));
}

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

query_params::query_params(const httplib::Request& req) {
  auto q = req.target.find('?');
  if (q != std::string::npos)
    httplib::detail::parse_query_text(req.target.substr(q + 1), params_);
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

void post_route(httplib::Server& server, const std::string& pattern,
                std::size_t max_bytes, body_handler handler) {
  server.Post(pattern, [max_bytes, handler = std::move(handler)](
                         const httplib::Request& req, httplib::Response& res,
                         const httplib::ContentReader& read) {
    auto too_large = [&] {
      send_error(res, 413, "payload_too_large",
                 "request body exceeds " + std::to_string(max_bytes)
                   + " bytes");
    };
    if (req.is_multipart_form_data()) {
      // Read and dropped so that the connection stays usable.
      std::size_t seen = 0;
      read(
        [](const httplib::MultipartFormData&) {
          return true;
        },
        [&](const char*, std::size_t n) {
          seen += n;
          return seen <= max_bytes;
        });
      if (seen > max_bytes || res.status == 413) return too_large();
      return send_error(res, 415, "unsupported_media_type",
                        "body: multipart/form-data is not accepted; send the "
                        "JSON itself as the body");
    }
    std::string body;
    // A request with neither Content-Length nor chunked Transfer-Encoding
    // has no body (RFC 9112, 6.3); httplib would wait for the connection to
    // close and answer 400 after its read timeout.
    if (!req.has_header("Content-Length")
        && req.get_header_value("Transfer-Encoding").find("chunked")
             == std::string::npos)
      return handler(req, body, res);
    bool over = false;
    bool ok = read([&](const char* data, std::size_t n) {
      if (body.size() + n > max_bytes) {
        over = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (over || res.status == 413) return too_large();
    if (!ok)
      return send_error(res, 400, "invalid_argument",
                        "body: could not be read (connection closed or timed "
                        "out before its end)");
    handler(req, body, res);
  });
}

void install_error_handlers(httplib::Server& server, std::size_t max_body_bytes,
                            const std::vector<route>& routes) {
  auto table
    = std::make_shared<std::vector<std::pair<std::regex, std::string>>>();
  for (const auto& r : routes) {
    table->emplace_back(std::regex{r.pattern}, r.method);
    if (r.method == "GET") table->emplace_back(std::regex{r.pattern}, "HEAD");
  }
  server.set_error_handler([max_body_bytes, table](const httplib::Request& req,
                                                   httplib::Response& res) {
    // Handlers that replied already set a JSON body.
    if (!res.body.empty()) return;
    // No handler for this method (404, or 400 for a method httplib does
    // not know) on a path that has others: 405.
    if (res.status == 404 || res.status == 400) {
      std::string allow;
      for (const auto& [path, method] : *table)
        if (std::regex_match(req.path, path))
          allow += (allow.empty() ? "" : ", ") + method;
      if (!allow.empty()) {
        res.set_header("Allow", allow);
        return send_error(res, 405, "method_not_allowed",
                          "method " + workflow::printable(req.method, 16)
                            + " is not allowed on "
                            + workflow::printable(req.path, 120)
                            + " (allowed: " + allow + ")");
      }
    }
    std::string message;
    if (res.status == 413)
      message = "request body exceeds " + std::to_string(max_body_bytes)
                + " bytes";
    else if (res.status == 404)
      message = "no route " + workflow::printable(req.method, 16) + " "
                + workflow::printable(req.path, 120);
    else if (res.status == 400)
      message = "malformed request: the request line or a header could not "
                "be read, or the method ("
                + workflow::printable(req.method, 16)
                + ") is not one of GET, HEAD, POST, PUT, DELETE, OPTIONS, "
                  "PATCH";
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
      send_error(res, 500, "internal", workflow::printable(what, 300));
    });
}

} // namespace cerebelum::api
