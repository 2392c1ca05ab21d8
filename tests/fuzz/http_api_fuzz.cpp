// Fuzzes the HTTP API's routing and handlers: a request decoded from the
// input goes through the real server of `make_http_api` (its method check,
// its route table in order, the permission guard, the handlers, the answer
// observer) by `http::server::serve`, the same dispatch a connection's
// request takes, without a socket. Behind it `fuzz_engine` records every
// call and answers from the input (success, each error code, texts of any
// characters), so that the handlers' checks and their JSON rendering of every
// answer run; half the inputs run with an authenticator over tokens of
// every role and two scoped ones (tests/fuzz/fuzz_engine.hpp).
//
// Input (one text, so that seeds are requests as written):
//
//   line 1    control: its first byte's bit 0 turns tokens on; the rest of
//             the line is the engine's answers, drawn in order (then zeros)
//   line 2    METHOD TARGET
//   lines     Name: value (until an empty line); `@NAME` in a value is the
//             text of token NAME (admin, operator, starter, reader, worker,
//             scoped, scoped2, expired, revoked, wrong); a field `:subject`
//             is the client certificate's subject (`@cert`: the one bound
//             to a principal)
//   the rest  the body
//
// Checked for every answer: a status the API documents; a JSON body that
// parses (unless a HEAD, the metrics text or an event stream); errors of
// the shape {"error": {"code", "message"}}; 404/405 exactly when no route
// takes the path or the method (an oracle of docs/api.md's routes, apart
// from the regular expressions); 500 only after the engine answered an
// internal error; with tokens: no engine call for a request the permission
// table or a token's scope refuses (401 with WWW-Authenticate, 403), every
// recorded `by` is the principal's name, and a scoped principal's calls
// touch only executions its scope includes; every waiting request's place
// is given back once it is answered.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/auth/permissions.hpp"
#include "src/bridges/http_api.hpp"
#include "src/bridges/http_server.hpp"
#include "src/bridges/http_target.hpp"
#include "tests/fuzz/fuzz_engine.hpp"

using namespace cerebelum;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "http_api invariant broken: %s\n", what.c_str());
  std::abort();
}

/// The bodies the server takes (larger ones get 413 from its parser).
constexpr std::size_t max_body_bytes = 64 << 10;

/// One harness: the engine, the store and two servers (without and with
/// tokens), made once.
struct world {
  fuzz::answer_bytes in;
  fuzz::fuzz_store store{in};
  std::shared_ptr<fuzz::fuzz_engine> engine
    = std::make_shared<fuzz::fuzz_engine>(in, &store);
  std::shared_ptr<auth::authenticator> auth
    = std::make_shared<auth::authenticator>(
      [this] {
        return &store;
      },
      [] {
        return fuzz::fuzz_now_ms;
      });
  fuzz::fuzz_tokens tokens = fuzz::make_fuzz_tokens(store, *auth);
  std::shared_ptr<api::principal_waits> waits
    = std::make_shared<api::principal_waits>(2);
  std::unique_ptr<api::http::server> open_server = make(nullptr);
  std::unique_ptr<api::http::server> token_server = make(auth);

  std::unique_ptr<api::http::server> make(api::authenticator_ptr a) {
    api::http_options opts;
    opts.auth = std::move(a);
    opts.waits = waits;
    opts.max_body_bytes = max_body_bytes;
    opts.warnings = {"fuzz"};
    return api::make_http_api(engine, opts);
  }
};

world& the_world() {
  static world w;
  return w;
}

std::string_view next_line(std::string_view& text) {
  auto end = text.find('\n');
  auto line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

/// `value` with each `@NAME` of a known token replaced by its text.
std::string with_tokens(std::string value, const fuzz::fuzz_tokens& t) {
  for (const auto& [name, text] : t.text) {
    auto at = "@" + name;
    for (auto i = value.find(at); i != std::string::npos;
         i = value.find(at, i + text.size()))
      value.replace(i, at.size(), text);
  }
  return value;
}

/// What docs/api.md says takes a path: the route's label in the permission
/// table's notation, its method, and the workflow a start names.
struct route_oracle {
  bool any = false;
  std::string method;
  /// A second method the same path takes ("" when none).
  std::string method2{};
  std::string label;
  std::string workflow;
};

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool dead_letter_id(const std::string& s) {
  auto digits = std::string_view{s};
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 18) return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  return true;
}

route_oracle route_of(const std::string& path) {
  route_oracle r;
  auto take = [&r](const char* method, const char* label) {
    r.any = true;
    r.method = method;
    r.label = label;
  };
  if (path == "/metrics") {
    take("GET", "/metrics");
    return r;
  }
  auto s = segments(path);
  // s[0] is what precedes the first '/': a path must start with one.
  if (s.size() < 3 || !s[0].empty() || s[1] != "v1") return r;
  auto n = s.size();
  const auto& a = s[2];
  if (n == 3) {
    if (a == "executions") take("GET", "/v1/executions");
    if (a == "health") take("GET", "/v1/health");
    if (a == "workflows") take("GET", "/v1/workflows");
    if (a == "dead-letters") take("GET", "/v1/dead-letters");
    return r;
  }
  const auto& b = s[3];
  if (a == "workflows" && n == 4 && b == "check-upgrade")
    take("POST", "/v1/workflows/check-upgrade");
  if (a == "workflows" && n == 5 && !b.empty() && s[4] == "executions") {
    take("POST", "/v1/workflows/{name}/executions");
    r.workflow = b;
  }
  if (a == "workflows" && n == 5 && !b.empty() && s[4] == "owner") {
    take("GET", "/v1/workflows/{name}/owner");
    r.method2 = "POST";
    r.workflow = b;
  }
  if (a == "executions" && !b.empty()) {
    if (n == 4) take("GET", "/v1/executions/{id}");
    if (n == 5) {
      const auto& c = s[4];
      if (c == "history") take("GET", "/v1/executions/{id}/history");
      if (c == "events") take("GET", "/v1/executions/{id}/events");
      if (c == "approve") take("POST", "/v1/executions/{id}/approve");
      if (c == "reject") take("POST", "/v1/executions/{id}/reject");
      if (c == "cancel") take("POST", "/v1/executions/{id}/cancel");
    }
  }
  if (a == "dead-letters" && n == 5 && dead_letter_id(b) && s[4] == "retry")
    take("POST", "/v1/dead-letters/{id}/retry");
  return r;
}

bool known_method(const std::string& m) {
  for (const char* k :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
    if (m == k) return true;
  return false;
}

bool has_header(const api::http::response& res, std::string_view name) {
  for (const auto& [n, v] : res.headers)
    if (n == name) return true;
  return false;
}

/// The error's code when `res` has the documented error shape; fails
/// otherwise.
std::string error_code(const api::http::response& res) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(res.body);
  } catch (const std::exception& e) {
    fail("status " + std::to_string(res.status)
         + ": the body is not JSON: " + e.what());
  }
  if (!doc.is_object() || doc.size() != 1 || !doc.contains("error"))
    fail("status " + std::to_string(res.status)
         + ": not an error: " + res.body.substr(0, 200));
  const auto& e = doc["error"];
  if (!e.is_object() || !e.contains("code") || !e["code"].is_string()
      || !e.contains("message") || !e["message"].is_string())
    fail("an error without its code and message: " + res.body.substr(0, 200));
  auto code = e["code"].get<std::string>();
  // docs/api.md: overloaded and unavailable add "retry_after_ms" (and
  // Retry-After); nothing else has a third field.
  bool retry = (code == "overloaded" || code == "unavailable")
               && e.contains("retry_after_ms")
               && e["retry_after_ms"].is_number_unsigned();
  if (e.size() != (retry ? 3u : 2u))
    fail("an error with fields beyond its code and message: "
         + res.body.substr(0, 200));
  if (retry && !has_header(res, "Retry-After"))
    fail("retry_after_ms without Retry-After: " + res.body.substr(0, 200));
  return code;
}

/// Who the request's credentials name (as docs/security.md says), or
/// nothing.
std::optional<auth::principal> presented(const api::http::request& req,
                                         const fuzz::fuzz_tokens& t) {
  auto authorization = req.header("authorization");
  auto token = auth::bearer_token(authorization);
  if (token.empty()) {
    if (req.client_subject == t.subject) return t.who.at("cert");
    return std::nullopt;
  }
  for (const auto& [name, text] : t.text)
    if (text == token) {
      auto i = t.who.find(name);
      if (i == t.who.end()) return std::nullopt;
      return i->second;
    }
  return std::nullopt;
}

void check(world& w, const api::http::request& req, bool tokens,
           const api::http::response& res) {
  static constexpr int statuses[] = {200, 201, 400, 401, 403, 404, 405,
                                     409, 413, 429, 500, 503, 504};
  if (std::find(std::begin(statuses), std::end(statuses), res.status)
      == std::end(statuses))
    fail("undocumented status " + std::to_string(res.status));
  const auto& calls = w.engine->calls;
  bool head = req.method == "HEAD";
  std::string code;
  // docs/api.md: GET /v1/health answers 503 with the health body (status
  // "unavailable") and Retry-After while the store is away.
  bool health_down = res.status == 503
                     && api::http::split_target(req.target).path
                          == "/v1/health";
  if (health_down) {
    if (!has_header(res, "Retry-After"))
      fail("a 503 health answer without Retry-After");
    if (!head) {
      auto doc = nlohmann::json::parse(res.body, nullptr, false);
      if (!doc.is_object() || doc.value("status", "") != "unavailable")
        fail("a 503 health answer that is not unavailable: "
             + res.body.substr(0, 200));
    }
  } else if (res.status >= 400) {
    if (res.content_type != "application/json")
      fail("an error of type " + res.content_type);
    if (!head) code = error_code(res);
  } else if (!head && res.content_type == "application/json") {
    if (!nlohmann::json::accept(res.body))
      fail("status " + std::to_string(res.status) + ": the body is not JSON");
  } else if (!head && res.content_type.starts_with("text/event-stream")) {
    // Every event's data is one line of JSON.
    std::string_view rest = res.body;
    while (!rest.empty()) {
      auto line = next_line(rest);
      if (line.starts_with("data: ") && !nlohmann::json::accept(line.substr(6)))
        fail("an event's data is not JSON: " + std::string{line});
    }
  }
  if (res.status == 500 && !w.engine->gave_internal)
    fail("500 without an internal error of the engine: " + res.body);
  // Routing against the oracle.
  auto path = api::http::split_target(req.target).path;
  auto route = route_of(path);
  auto method = head ? std::string{"GET"} : req.method;
  if (!known_method(req.method)) {
    if (res.status != 400 || !calls.empty())
      fail("an unknown method was not refused with 400");
    return;
  }
  if (!route.any) {
    if (res.status != 404 || (!head && code != "not_found") || !calls.empty())
      fail("no route takes '" + path + "' but it got "
           + std::to_string(res.status));
    return;
  }
  if (route.method != method && route.method2 != method) {
    if (res.status != 405 || !has_header(res, "Allow") || !calls.empty())
      fail(method + " " + path + " is not a route but got "
           + std::to_string(res.status));
    return;
  }
  if (code == "method_not_allowed" || res.status == 405)
    fail(method + " " + path + " is a route but got 405");
  if (!tokens) return;
  // The permission table, the token and its scope.
  auto needs = auth::needed("http", method + " " + route.label);
  if (!needs) fail(route.label + " is not in the permission table");
  if (*needs == auth::permission::open) return;
  auto who = presented(req, w.tokens);
  if (!who) {
    if (res.status != 401 || !calls.empty()
        || !has_header(res, "WWW-Authenticate"))
      fail("no valid credentials, yet " + std::to_string(res.status) + " with "
           + std::to_string(calls.size()) + " engine calls");
    return;
  }
  if (!auth::allows(who->r, *needs)
      || (!route.workflow.empty() && !fuzz::in_scope(*who, route.workflow))) {
    if (res.status != 403 || !calls.empty())
      fail(who->name + " may not " + method + " " + route.label + ", yet "
           + std::to_string(res.status) + " with "
           + std::to_string(calls.size()) + " engine calls");
    return;
  }
  if (auto err = fuzz::principal_call_error(*w.engine, *who,
                                            {"approve", "reject", "cancel",
                                             "history", "follow", "wait"});
      !err.empty())
    fail(err);
  for (const auto& c : calls) {
    if (who->workflows.empty() || c.op != "retry_dead_letter") continue;
    // The dead letter's execution was read and is in the scope.
    bool seen = false;
    for (const auto& id : w.store.dead_letter_executions) {
      auto d = w.engine->described.find(id);
      seen = seen
             || (d != w.engine->described.end()
                 && fuzz::in_scope(*who, d->second));
    }
    if (!seen)
      fail("a retry of a dead letter outside the scope of " + who->name);
  }
  if (w.waits->held(who->name) != 0)
    fail(who->name + " still holds a waiting request's place");
}

} // namespace

// The world is made before the first input: its tokens' slow hashes do
// not count against an input's time.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)the_world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  auto& w = the_world();
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto control = next_line(text);
  bool tokens = !control.empty() && (control[0] & 1);
  if (!control.empty()) control.remove_prefix(1);
  auto request_line = next_line(text);
  api::http::request req;
  auto sp = request_line.find(' ');
  req.method = std::string{request_line.substr(0, sp)};
  if (sp != std::string_view::npos)
    req.target = std::string{request_line.substr(sp + 1)};
  while (!text.empty()) {
    auto line = next_line(text);
    if (line.empty()) break;
    auto colon = line.find(':', 1);
    if (colon == std::string_view::npos) continue;
    auto name = std::string{line.substr(0, colon)};
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    if (name == ":subject") {
      req.client_subject = value == "@cert" ? w.tokens.subject
                                            : std::string{value};
      continue;
    }
    for (auto& c : name)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    req.headers.emplace(name, with_tokens(std::string{value}, w.tokens));
  }
  req.body = std::string{text};
  // The server's parser takes no larger request line or body.
  if (req.target.size() > api::http::max_header_bytes
      || req.body.size() > max_body_bytes)
    return 0;
  w.in.reset(control);
  w.engine->reset();
  w.store.dead_letter_executions.clear();
  auto& srv = tokens ? *w.token_server : *w.open_server;
  auto res = srv.serve(req);
  check(w, req, tokens, res);
  return 0;
}
