// The HTTP/JSON API over a real server (src/bridges/http_server; clients
// are httplib's and raw sockets) and the in-memory test double of the
// engine: statuses, error bodies, JSON shapes.

#include <catch2/catch.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "src/bridges/http_api.hpp"
#include "tests/api/fake_engine.hpp"
#include "tests/support/scratch.hpp"

using cerebelum::test::fake_engine;
using json = nlohmann::json;
using st = cerebelum::eventstore::execution_status;

namespace {

struct fixture {
  std::shared_ptr<fake_engine> engine = std::make_shared<fake_engine>();
  std::unique_ptr<cerebelum::api::http::server> server;
  std::unique_ptr<httplib::Client> client;
  int port = 0;
  std::string last_allow; // the Allow header of the last raw() answer

  explicit fixture(std::size_t max_body_bytes = 4096) {
    cerebelum::api::http_options opts;
    opts.max_body_bytes = max_body_bytes;
    server = cerebelum::api::make_http_api(engine, opts);
    auto err = server->listen("127.0.0.1", 0);
    REQUIRE_FALSE(err);
    port = server->port();
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
  }

  ~fixture() {
    server->stop();
  }

  /// POSTs `body` and returns status and parsed body.
  std::pair<int, json> post(const std::string& path, const std::string& body) {
    auto res = client->Post(path.c_str(), body, "application/json");
    REQUIRE(res);
    return {res->status, json::parse(res->body)};
  }

  /// POSTs `body` with `content_type` (empty: no body and no Content-Type).
  std::pair<int, json> post_as(const std::string& path, const std::string& body,
                               const std::string& content_type) {
    auto res = content_type.empty()
                 ? client->Post(path.c_str())
                 : client->Post(path.c_str(), body, content_type.c_str());
    REQUIRE(res);
    INFO(res->body);
    return {res->status, json::parse(res->body)};
  }

  /// Sends `head` (request line and headers, no body) on a new connection
  /// and returns the status and body of the answer, or status 0 when none
  /// came within 3 s.
  std::pair<int, json> raw(const std::string& head) {
    int fd = cerebelum::test::connect_loopback(port);
    REQUIRE(fd >= 0);
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL)
            == static_cast<ssize_t>(head.size()));
    std::string data;
    char buf[4096];
    for (;;) {
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      auto end = data.find("\r\n\r\n");
      auto cl = data.find("Content-Length: ");
      if (end == std::string::npos || cl == std::string::npos) continue;
      auto length = std::strtoul(data.c_str() + cl + 16, nullptr, 10);
      if (data.size() >= end + 4 + length) break;
    }
    ::close(fd);
    INFO(data);
    last_allow.clear();
    if (auto a = data.find("\r\nAllow: "); a != std::string::npos)
      last_allow = data.substr(a + 9, data.find("\r\n", a + 2) - a - 9);
    if (data.rfind("HTTP/1.1 ", 0) != 0) return {0, json{}};
    return {std::atoi(data.c_str() + 9),
            json::parse(data.substr(data.find("\r\n\r\n") + 4))};
  }

  std::pair<int, json> get(const std::string& path) {
    auto res = client->Get(path.c_str());
    REQUIRE(res);
    return {res->status, json::parse(res->body)};
  }
};

void check_error(const std::pair<int, json>& res, int status,
                 const std::string& code) {
  INFO(res.second.dump());
  CHECK(res.first == status);
  CHECK(res.second["error"]["code"] == code);
  CHECK_FALSE(res.second["error"]["message"].get<std::string>().empty());
}

} // namespace

TEST_CASE("POST executions starts one and nests its input as JSON") {
  fixture f;
  auto res = f.post("/v1/workflows/order/executions?id=o-1",
                    R"({"order_id":"o-1","amount":5})");
  CHECK(res.first == 201);
  CHECK(res.second["created"] == true);
  CHECK(res.second["execution"]["execution_id"] == "o-1");
  CHECK(res.second["execution"]["input"]["amount"] == 5);
  CHECK(res.second["execution"]["result"].is_null());
  res = f.post("/v1/workflows/order/executions?id=o-1", "{}");
  CHECK(res.first == 200);
  CHECK(res.second["created"] == false);
}

TEST_CASE("POST executions rejects malformed or non-object bodies with 400") {
  fixture f;
  auto res = f.post("/v1/workflows/order/executions", "{oops");
  check_error(res, 400, "invalid_argument");
  CHECK_THAT(res.second["error"]["message"].get<std::string>(),
             Catch::StartsWith("body: "));
  check_error(f.post("/v1/workflows/order/executions", "42"), 400,
              "invalid_argument");
  check_error(f.post("/v1/workflows/order/executions?wait=maybe", "{}"), 400,
              "invalid_argument");
}

TEST_CASE("POST check-upgrade answers each execution and the counts") {
  fixture f;
  auto res = f.post("/v1/workflows/check-upgrade?file=order.yaml",
                    "name: order");
  REQUIRE(res.first == 200);
  CHECK(res.second["workflow"] == "order");
  CHECK(res.second["compatible"] == 1);
  CHECK(res.second["incompatible"] == 1);
  REQUIRE(res.second["executions"].size() == 2);
  CHECK(res.second["executions"][1]["step"] == "validate");
  CHECK(res.second["executions"][1]["seq"] == 1);
  check_error(f.post("/v1/workflows/check-upgrade", "bad"), 400,
              "invalid_argument");
}

TEST_CASE("POST check-upgrade?migrate=true moves the compatible executions, "
          "recorded with by") {
  fixture f;
  auto res = f.post(
    "/v1/workflows/check-upgrade?file=order.yaml&migrate=true&by=alice",
    "name: order");
  REQUIRE(res.first == 200);
  CHECK(res.second["migrated"] == 1);
  CHECK(res.second["executions"][0]["migrated"] == true);
  CHECK(f.engine->migrated_by == "alice");
  check_error(f.post("/v1/workflows/check-upgrade?migrate=true", "name: o"),
              400, "invalid_argument");
  check_error(f.post("/v1/workflows/check-upgrade?migrate=maybe&by=a", "x"),
              400, "invalid_argument");
}

TEST_CASE("POST executions of an unknown workflow is 404 unknown_workflow") {
  fixture f;
  check_error(f.post("/v1/workflows/nope/executions", "{}"), 404,
              "unknown_workflow");
}

TEST_CASE("a start refused by admission control is 429 overloaded with a "
          "retry hint") {
  fixture f;
  check_error(f.post("/v1/workflows/busy/executions", "{}"), 429, "overloaded");
  auto res = f.client->Post("/v1/workflows/busy/executions", "{}",
                            "application/json");
  REQUIRE(res);
  CHECK(res->get_header_value("Retry-After") == "1");
  CHECK(json::parse(res->body)["error"]["retry_after_ms"] == 1000);
}

TEST_CASE("an oversized body is 413 with a JSON error") {
  fixture f;
  std::string big = R"({"pad":")" + std::string(8000, 'x') + R"("})";
  check_error(f.post("/v1/workflows/order/executions", big), 413,
              "payload_too_large");
}

TEST_CASE("a JSON body is read up to the limit whatever its Content-Type") {
  // Over 8 KiB, httplib refused form-encoded bodies (curl -d) with 413.
  constexpr std::size_t limit = 200 * 1024;
  fixture f{limit};
  std::string pad(100 * 1024, 'x');
  std::string body = R"({"pad":")" + pad + R"("})";
  for (const char* type : {"application/x-www-form-urlencoded", "text/plain",
                           "application/octet-stream"}) {
    INFO(type);
    auto res = f.post_as("/v1/workflows/order/executions", body, type);
    CHECK(res.first == 201);
    CHECK(res.second["execution"]["input"]["pad"] == pad);
  }
  std::string over = R"({"pad":")" + std::string(limit, 'x') + R"("})";
  over.resize(limit + 1);
  check_error(f.post_as("/v1/workflows/order/executions", over,
                        "application/x-www-form-urlencoded"),
              413, "payload_too_large");
  std::string exact = R"({"pad":")";
  exact += std::string(limit - exact.size() - 2, 'x') + R"("})";
  REQUIRE(exact.size() == limit);
  CHECK(f.post_as("/v1/workflows/order/executions?id=exact", exact,
                  "application/x-www-form-urlencoded")
          .first
        == 201);
  check_error(f.post_as("/v1/workflows/order/executions", "{}",
                        "multipart/form-data; boundary=x"),
              415, "unsupported_media_type");
}

TEST_CASE("a POST whose body is optional works without body or "
          "Content-Type") {
  // curl -XPOST without -d sends neither Content-Length nor Content-Type;
  // httplib waited for the connection to close and answered 400 after 5 s.
  fixture f;
  auto head = [](const std::string& target) {
    return "POST " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  };
  auto started = f.raw(head("/v1/workflows/order/executions?id=nb"));
  CHECK(started.first == 201);
  CHECK(started.second["execution"]["input"] == json::object());
  f.engine->set_status("nb", st::sleeping);
  auto cancelled = f.raw(head("/v1/executions/nb/cancel"));
  CHECK(cancelled.first == 200);
  CHECK(cancelled.second["status"] == "cancelled");
  // Approve needs its "by": the answer names it instead of "HTTP 400".
  auto approve = f.raw(head("/v1/executions/nb/approve"));
  CHECK(approve.first == 400);
  CHECK(approve.second["error"]["message"] == "by: must not be empty");
}

TEST_CASE("GET an unknown execution is 404 not_found") {
  fixture f;
  check_error(f.get("/v1/executions/missing"), 404, "not_found");
  check_error(f.get("/v1/executions/missing/history"), 404, "not_found");
  check_error(f.post("/v1/executions/missing/approve", R"({"by":"a"})"), 404,
              "not_found");
}

TEST_CASE("an unknown route is 404 with a JSON error") {
  fixture f;
  check_error(f.get("/v2/nothing"), 404, "not_found");
  check_error(f.post("/v1/nothing", "{}"), 404, "not_found");
}

TEST_CASE("a known path with a wrong method is 405 with Allow") {
  fixture f;
  struct probe {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (auto [method, path, allow] :
       {probe{"GET", "/v1/workflows/order/executions", "POST"},
        probe{"DELETE", "/v1/executions/x", "GET, HEAD"},
        probe{"PUT", "/v1/executions/x/cancel", "POST"},
        probe{"POST", "/v1/health", "GET, HEAD"},
        probe{"PATCH", "/v1/dead-letters/3/retry", "POST"},
        probe{"OPTIONS", "/v1/executions", "GET, HEAD"}}) {
    auto res = f.raw(std::string{method} + " " + path
                     + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    INFO(method << " " << path << ": " << res.second.dump());
    CHECK(res.first == 405);
    CHECK(res.second["error"]["code"] == "method_not_allowed");
    CHECK(res.second["error"]["message"]
          == std::string{"method "} + method + " is not allowed on " + path
               + " (allowed: " + allow + ")");
    CHECK(f.last_allow == allow);
  }
  // A method the API does not know is refused before routing; the answer
  // says what could be wrong rather than "HTTP 400".
  auto brew = f.raw("BREW /v1/executions HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(brew.first == 400);
  CHECK_THAT(brew.second["error"]["message"].get<std::string>(),
             Catch::Contains("BREW"));
}

TEST_CASE("approve records the operator and the data, twice is 409") {
  fixture f;
  f.post("/v1/workflows/order/executions?id=a", "{}");
  check_error(f.post("/v1/executions/a/approve", R"({"by":"al"})"), 409,
              "not_awaiting_approval");
  f.engine->set_status("a", st::awaiting_approval);
  auto shown = f.get("/v1/executions/a");
  CHECK(shown.second["status"] == "awaiting_approval");
  CHECK(shown.second["approval_data"]["amount"] == 1500);
  auto res = f.post("/v1/executions/a/approve",
                    R"({"by":"al","data":{"ok":1}})");
  CHECK(res.first == 200);
  CHECK(f.engine->last_by == "al");
  CHECK(f.engine->last_data == json{{"ok", 1}});
  check_error(f.post("/v1/executions/a/approve", R"({"by":"al"})"), 409,
              "not_awaiting_approval");
}

TEST_CASE("approve and reject need a string 'by'") {
  fixture f;
  f.post("/v1/workflows/order/executions?id=a", "{}");
  f.engine->set_status("a", st::awaiting_approval);
  check_error(f.post("/v1/executions/a/approve", "{}"), 400,
              "invalid_argument");
  check_error(f.post("/v1/executions/a/reject", R"({"by":5})"), 400,
              "invalid_argument");
  check_error(f.post("/v1/executions/a/reject", "{bad"), 400,
              "invalid_argument");
}

TEST_CASE("cancel of a finished execution is 409 already_terminal") {
  fixture f;
  f.post("/v1/workflows/order/executions?id=c", "{}");
  CHECK(f.post("/v1/executions/c/cancel", "").second["status"] == "cancelled");
  check_error(f.post("/v1/executions/c/cancel", "{}"), 409, "already_terminal");
}

TEST_CASE("wait=true returns the finished execution or 504") {
  fixture f;
  auto res = f.post("/v1/workflows/order/executions?id=w&wait=true&timeout_ms="
                    "300",
                    "{}");
  check_error(res, 504, "deadline_exceeded");
  f.engine->set_status("w", st::completed);
  res = f.post("/v1/workflows/order/executions?id=w&wait=true", "{}");
  CHECK(res.first == 200);
  CHECK(res.second["execution"]["status"] == "completed");
  CHECK(res.second["execution"]["result"]["shipped"] == true);
}

TEST_CASE("GET executions filters, pages and checks its parameters") {
  fixture f;
  for (auto id : {"a", "b", "c"})
    f.post(std::string{"/v1/workflows/order/executions?id="} + id, "{}");
  f.engine->set_status("b", st::completed);
  auto res = f.get("/v1/executions?status=running&page_size=1");
  CHECK(res.first == 200);
  REQUIRE(res.second["executions"].size() == 1);
  auto token = res.second["next_page_token"].get<std::string>();
  REQUIRE_FALSE(token.empty());
  res = f.get("/v1/executions?status=running&page_size=1&page_token=" + token);
  CHECK(res.second["executions"][0]["execution_id"] == "c");
  check_error(f.get("/v1/executions?status=bogus"), 400, "invalid_argument");
  check_error(f.get("/v1/executions?page_size=x"), 400, "invalid_argument");
  check_error(f.get("/v1/executions?page_size=5000"), 400, "invalid_argument");
  check_error(f.get("/v1/executions?page_token=zz"), 400, "invalid_argument");
}

TEST_CASE("unknown query parameters and out-of-range values are 400 "
          "naming the parameter") {
  fixture f;
  f.post("/v1/workflows/order/executions?id=q", "{}");
  auto refused = [&](const std::string& method, const std::string& target,
                     const std::string& names) {
    auto res = method == "GET" ? f.get(target) : f.post(target, "{}");
    INFO(method << " " << target << ": " << res.second.dump());
    CHECK(res.first == 400);
    CHECK(res.second["error"]["code"] == "invalid_argument");
    CHECK_THAT(res.second["error"]["message"].get<std::string>(),
               Catch::Contains(names));
  };
  refused("GET", "/v1/executions?page_size=0", "page_size");
  refused("GET", "/v1/executions?page_size=100000", "page_size");
  refused("GET", "/v1/executions?unknown=1", "'unknown'");
  refused("GET", "/v1/executions?status=running&status=failed", "status");
  refused("GET", "/v1/dead-letters?page_size=0", "page_size");
  refused("GET", "/v1/dead-letters?unknown=1", "'unknown'");
  refused("GET", "/v1/executions/q?unknown=1", "'unknown'");
  refused("GET", "/v1/executions/q/history?unknown=1", "'unknown'");
  refused("GET", "/v1/health?verbose=1", "'verbose'");
  refused("GET", "/v1/workflows?x=1", "'x'");
  refused("POST", "/v1/workflows/order/executions?wait=maybe", "wait");
  refused("POST", "/v1/workflows/order/executions?unknown=1", "'unknown'");
  refused("POST", "/v1/workflows/order/executions?timeout_ms=-1", "timeout_ms");
  refused("POST", "/v1/workflows/order/executions?timeout_ms=60001",
          "timeout_ms");
  refused("POST", "/v1/workflows/check-upgrade?unknown=1", "'unknown'");
  refused("POST", "/v1/executions/q/cancel?reason=x", "'reason'");
  refused("POST", "/v1/executions/q/approve?by=a", "'by'");
  refused("POST", "/v1/dead-letters/1/retry?by=a", "'by'");
  // In range they pass.
  CHECK(f.get("/v1/executions?page_size=1000").first == 200);
  CHECK(f.get("/v1/executions?page_size=1").first == 200);
  CHECK(f.get("/v1/executions").first == 200);
}

TEST_CASE("a start whose id could not be read back is 400 naming it") {
  fixture f;
  for (const char* id : {"a%2Fb", "a/b", ".", "..", "%2E%2E"}) {
    auto res = f.post(std::string{"/v1/workflows/order/executions?id="} + id,
                      "{}");
    INFO(id << ": " << res.second.dump());
    CHECK(res.first == 400);
    CHECK_THAT(res.second["error"]["message"].get<std::string>(),
               Catch::StartsWith("execution_id: "));
  }
  // Ids with characters a client percent-encodes are fine.
  auto ok = f.post("/v1/workflows/order/executions?id=a%3Fb%23c.d", "{}");
  REQUIRE(ok.first == 201);
  CHECK(f.get("/v1/executions/a%3Fb%23c.d").second["execution_id"]
        == "a?b#c.d");
}

TEST_CASE("GET history flattens events and nests their JSON") {
  fixture f;
  f.post("/v1/workflows/order/executions?id=h", R"({"n":1})");
  auto res = f.get("/v1/executions/h/history");
  CHECK(res.first == 200);
  auto& evs = res.second["events"];
  REQUIRE(evs.size() == 2);
  CHECK(evs[0]["type"] == "execution_started");
  CHECK(evs[0]["input"]["n"] == 1);
  CHECK(evs[1]["type"] == "step_completed");
  CHECK(evs[1]["result"]["ok"] == true);
  CHECK(f.get("/v1/executions/h/history?from_seq=1").second["events"].size()
        == 1);
}

TEST_CASE("GET workflows lists the engine's workflows") {
  fixture f;
  auto res = f.get("/v1/workflows");
  CHECK(res.first == 200);
  CHECK(res.second["workflows"][0]["name"] == "order");
  CHECK(res.second["workflows"][0]["version"] == "7");
}

TEST_CASE("GET a workflow's owner answers who owns it and its last change "
          "of hands") {
  fixture f;
  auto res = f.get("/v1/workflows/order/owner");
  INFO(res.second.dump());
  CHECK(res.first == 200);
  CHECK(res.second["owner"] == "token 'a'");
  CHECK(res.second["recorded"] == true);
  CHECK(res.second["recorded_owner"] == "token 'a'");
  CHECK(res.second["claimed_at_ms"] == 1);
  CHECK(res.second["previous_owner"] == "token 'b'");
  CHECK(res.second["replaced_by"] == "token 'admin'");
  CHECK(res.second["replaced_at_ms"] == 5);
  check_error(f.get("/v1/workflows/refund/owner"), 404, "unknown_workflow");
}

TEST_CASE("POST a workflow's owner takes only a body naming the token to "
          "transfer it to, and a node without tokens transfers nothing") {
  fixture f;
  auto post = [&](const std::string& body) {
    auto res = f.client->Post("/v1/workflows/order/owner", body,
                              "application/json");
    REQUIRE(res);
    return std::pair<int, json>{res->status, json::parse(res->body)};
  };
  auto unknown = post(R"({"to": "b", "by": "x"})");
  check_error(unknown, 400, "invalid_argument");
  CHECK(unknown.second["error"]["message"]
        == "body: unknown field 'by' "
           "(only \"to\")");
  check_error(post(R"({"to": ""})"), 400, "invalid_argument");
  check_error(post("[1]"), 400, "invalid_argument");
  auto no_tokens = post(R"({"to": "b"})");
  check_error(no_tokens, 409, "not_transferable");
  CHECK(no_tokens.second["error"]["message"].get<std::string>().find(
          "runs without --auth token")
        != std::string::npos);
}

TEST_CASE("GET dead-letters lists them and POST retry reopens one once") {
  fixture f;
  auto listed = f.get("/v1/dead-letters?queue=billing");
  REQUIRE(listed.first == 200);
  REQUIRE(listed.second["dead_letters"].size() == 1);
  auto& dl = listed.second["dead_letters"][0];
  CHECK(dl["id"] == 1);
  CHECK(dl["execution_id"] == "dl-1");
  CHECK(dl["input"] == json{{"amount", 1500}});
  CHECK(dl["error"]["kind"] == "card_declined");
  CHECK(listed.second["next_page_token"] == "");
  check_error(f.get("/v1/dead-letters?page_size=x"), 400, "invalid_argument");
  check_error(f.post("/v1/dead-letters/1/retry", "{}"), 400,
              "invalid_argument");
  check_error(f.post("/v1/dead-letters/7/retry", R"({"by": "ops"})"), 404,
              "not_found");
  auto retried = f.post("/v1/dead-letters/1/retry", R"({"by": "ops"})");
  REQUIRE(retried.first == 200);
  CHECK(retried.second["execution_id"] == "dl-1");
  CHECK(retried.second["status"] == "running");
  CHECK(f.engine->last_by == "ops");
  check_error(f.post("/v1/dead-letters/1/retry", R"({"by": "ops"})"), 409,
              "not_retryable");
  CHECK(f.get("/v1/dead-letters").second["dead_letters"].empty());
}
