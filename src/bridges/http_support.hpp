#pragma once

// Helpers of the HTTP API's handlers: JSON replies, error bodies, query
// parameters, decision bodies and the routes that answer at once.

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include "src/bridges/http_server.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::api {

using json = nlohmann::json;

/// Replies `status` with `body` as JSON.
void send_json(http::response& res, int status, const json& body);

/// The body of an engine error's answer: `{"error": {"code": ...,
/// "message": ...}}`, with `retry_after_ms` when it is worth retrying soon.
json error_body(const caf::error& err);

/// Replies with the HTTP status of an engine error and its `error_body`
/// (and `Retry-After` when the body says to retry).
void send_error(http::response& res, const caf::error& err);

/// Replies `status` with an error body of `code` and `message`.
void send_error(http::response& res, int status, const std::string& code,
                const std::string& message);

/// The query parameters of a request's target, never of its body (a JSON
/// body sent with curl's default, form-encoded, Content-Type must not set
/// parameters). Every value read is checked against the text rule of its
/// field.
class query_params {
 public:
  explicit query_params(const http::request& req) : params_(req.query) {}

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
  std::multimap<std::string, std::string> params_;
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

/// A handler that answers at once, on the handler pool.
using sync_handler = std::function<void(const http::request&, http::response&)>;

/// Routes GETs (and HEADs) whose path matches `pattern` to `handler`.
void get_route(http::server& server, const std::string& pattern,
               sync_handler handler);

/// A POST handler given the request body as text.
using body_handler = std::function<void(
  const http::request&, const std::string& body, http::response&)>;

/// Routes POSTs whose path matches `pattern` to `handler`, which answers at
/// once. The body is read as it came, whatever its `Content-Type` (the
/// server refuses one over its limit with 413); a multipart body is 415. A
/// request with neither `Content-Length` nor chunked encoding has an empty
/// body.
void post_route(http::server& server, const std::string& pattern,
                body_handler handler);

/// Whether `req` carries a `multipart/form-data` body.
bool is_multipart(const http::request& req);

/// Answers a multipart body (`is_multipart`) 415.
void refuse_multipart(http::response& res);

} // namespace cerebelum::api
