#pragma once

// Helpers of the HTTP API's handlers: JSON replies, error bodies, query
// parameters and decision bodies. Included only by HTTP code (pulls in
// httplib).

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "workflow/safe_text.hpp"

namespace cerebelum::api {

using json = nlohmann::json;

/// Replies `status` with `body` as JSON.
void send_json(httplib::Response& res, int status, const json& body);

/// Replies with the HTTP status of an engine error and the body
/// `{"error": {"code": ..., "message": ...}}`.
void send_error(httplib::Response& res, const caf::error& err);

/// Replies `status` with an error body of `code` and `message`.
void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message);

/// The query parameters of a request's target, never of its body (httplib
/// also parses form-encoded bodies into `Request::params`; a JSON body sent
/// with curl's default Content-Type must not set parameters). Every value
/// read is checked against the text rule of its field.
class query_params {
 public:
  explicit query_params(const httplib::Request& req);

  [[nodiscard]] bool has(const std::string& name) const;

  /// An `invalid_argument` error naming the first parameter that is not in
  /// `names`, or one given twice; none when all are known.
  [[nodiscard]] caf::error
  only(std::initializer_list<std::string_view> names) const;

  /// The value of `name` (absent: `fallback`), valid UTF-8 within
  /// `max_bytes` and `rule`, or an `invalid_argument` error naming it.
  [[nodiscard]] caf::expected<std::string>
  text(const std::string& name, std::string fallback = {},
       workflow::text_rule rule = workflow::text_rule::name,
       std::size_t max_bytes = workflow::max_name_bytes) const;

  /// The value of `name` as true/false (absent: false).
  [[nodiscard]] caf::expected<bool> flag(const std::string& name) const;

  /// The value of `name` as an integer (absent: `fallback`).
  [[nodiscard]] caf::expected<long long> integer(const std::string& name,
                                                 long long fallback) const;

 private:
  httplib::Params params_;
};

/// Checks a value captured from the request path (a workflow name or an
/// execution id): `invalid_argument` naming `field` when it breaks the text
/// rule of names.
caf::error check_path_value(const std::string& field, const std::string& value);

/// The body of approve, reject and cancel.
struct decision_body {
  std::string by;
  std::string reason;
  json data;

  /// Parses `text` (empty means `{}`); with `require_by`, a missing or empty
  /// "by" is an `invalid_argument` error.
  static caf::expected<decision_body> parse(const std::string& text,
                                            bool require_by);
};

/// A POST handler given the request body as text.
using body_handler = std::function<void(
  const httplib::Request&, const std::string& body, httplib::Response&)>;

/// Routes POSTs whose path matches `pattern` to `handler`. The body is read
/// as it came, whatever its `Content-Type` (httplib would parse a
/// form-encoded body into parameters and refuse one over 8 KiB); a body over
/// `max_bytes` is 413 `payload_too_large`, a multipart body 415. A request
/// with neither `Content-Length` nor chunked encoding has an empty body.
void post_route(httplib::Server& server, const std::string& pattern,
                std::size_t max_bytes, body_handler handler);

/// A route of the API: its path pattern (a regular expression, as given to
/// httplib) and its method.
struct route {
  std::string pattern;
  std::string method;
};

/// Installs JSON bodies for errors httplib raises itself (unknown path 404,
/// oversized body 413, exceptions 500), and answers 405 with an `Allow`
/// header when the path is one of `routes` but the method is not.
void install_error_handlers(httplib::Server& server, std::size_t max_body_bytes,
                            const std::vector<route>& routes);

} // namespace cerebelum::api
