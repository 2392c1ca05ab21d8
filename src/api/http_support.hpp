#pragma once

// Helpers of the HTTP API's handlers: JSON replies, error bodies, query
// parameters and decision bodies. Included only by HTTP code (pulls in
// httplib).

#include <string>

#include <caf/expected.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

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

/// Reads the query parameter `name` as true/false (absent: false).
caf::expected<bool> query_bool(const httplib::Request& req,
                               const std::string& name);

/// Reads the query parameter `name` as an integer (absent: `fallback`).
caf::expected<long long> query_int(const httplib::Request& req,
                                   const std::string& name, long long fallback);

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

/// Installs JSON bodies for errors httplib raises itself (unknown route 404,
/// oversized body 413, exceptions 500).
void install_error_handlers(httplib::Server& server,
                            std::size_t max_body_bytes);

} // namespace cerebelum::api
