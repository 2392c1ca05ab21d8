// `http::server::serve`: a request answered without a connection takes the
// dispatch a connection's request takes (method check, routes in order,
// guard, handler, answer observer); the fuzz harness tests/fuzz/http_api
// depends on it.

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "src/bridges/http_server.hpp"

using json = nlohmann::json;
namespace http = cerebelum::api::http;

namespace {

http::request make(std::string method, std::string target) {
  http::request req;
  req.method = std::move(method);
  req.target = std::move(target);
  return req;
}

std::string header(const http::response& res, const std::string& name) {
  for (const auto& [n, v] : res.headers)
    if (n == name) return v;
  return {};
}

/// A server with GET /items/{n} answering the capture and the query.
std::unique_ptr<http::server> items_server() {
  auto srv = std::make_unique<http::server>();
  srv->route("GET", "/items/([0-9]+)",
             [](const http::request& req, http::responder answer) {
               http::response res;
               res.body = json{
                 {"item", req.captures.at(0)},
                 {"q", req.query.count("q") ? req.query.find("q")->second : ""},
                 {"path",
                  req.path}}.dump();
               res.set_header("X-Item", req.captures.at(0));
               answer.send(std::move(res));
             });
  return srv;
}

} // namespace

TEST_CASE("a served request reaches its route with the decoded path, its "
          "captures and its query") {
  auto srv = items_server();
  auto res = srv->serve(make("GET", "/items/%31%32?q=a%20b"));
  CHECK(res.status == 200);
  auto body = json::parse(res.body);
  CHECK(body["item"] == "12");
  CHECK(body["q"] == "a b");
  CHECK(body["path"] == "/items/12");
}

TEST_CASE("a served request of another method gets 405 with Allow, an "
          "unknown path 404 and an unknown method 400") {
  auto srv = items_server();
  auto wrong = srv->serve(make("POST", "/items/1"));
  CHECK(wrong.status == 405);
  CHECK(header(wrong, "Allow") == "GET, HEAD");
  CHECK(json::parse(wrong.body)["error"]["code"] == "method_not_allowed");
  auto none = srv->serve(make("GET", "/things/1"));
  CHECK(none.status == 404);
  CHECK(json::parse(none.body)["error"]["code"] == "not_found");
  auto brew = srv->serve(make("BREW", "/items/1"));
  CHECK(brew.status == 400);
  CHECK(json::parse(brew.body)["error"]["code"] == "invalid_argument");
}

TEST_CASE("a served HEAD request gets the GET route's headers without its "
          "body") {
  auto srv = items_server();
  auto res = srv->serve(make("HEAD", "/items/7"));
  CHECK(res.status == 200);
  CHECK(header(res, "X-Item") == "7");
  CHECK(res.body.empty());
}

TEST_CASE("the guard refuses a served request before its handler runs, "
          "seeing its headers in lower case") {
  auto srv = std::make_unique<http::server>();
  std::atomic<int> handled{0};
  srv->route("GET", "/secret", [&](const http::request&, http::responder a) {
    ++handled;
    a.send(http::response{});
  });
  srv->check_with([](const std::string& route,
                     http::request& req) -> std::optional<http::response> {
    CHECK(route == "/secret");
    if (req.header("authorization") == "Bearer ok") {
      req.principal = "someone";
      return std::nullopt;
    }
    return http::error_response(401, "unauthenticated", "no");
  });
  auto refused = srv->serve(make("GET", "/secret"));
  CHECK(refused.status == 401);
  CHECK(handled == 0);
  auto req = make("GET", "/secret");
  req.headers.emplace("Authorization", "Bearer ok");
  // What the caller puts in the fields the server sets is not kept.
  req.principal = "forged";
  auto allowed = srv->serve(req);
  CHECK(allowed.status == 200);
  CHECK(handled == 1);
}

TEST_CASE("the observer is told of a served answer with its route") {
  auto srv = items_server();
  std::vector<std::pair<std::string, int>> seen;
  srv->observe([&](const std::string& route, int status, double) {
    seen.emplace_back(route, status);
  });
  (void)srv->serve(make("GET", "/items/1"));
  (void)srv->serve(make("GET", "/nope"));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::pair<std::string, int>{"/items/([0-9]+)", 200});
  CHECK(seen[1] == std::pair<std::string, int>{"", 404});
}

TEST_CASE("a served streamed answer is returned whole once its stream ends, "
          "and the stream's end is told") {
  auto srv = std::make_unique<http::server>();
  bool ended = false;
  srv->route("GET", "/events", [&](const http::request&, http::responder a) {
    http::response head;
    head.content_type = "text/event-stream";
    head.body = "retry: 1\n\n";
    auto out = a.open_stream(std::move(head));
    out.on_end([&] {
      ended = true;
    });
    CHECK(out.write("a\n"));
    CHECK(out.write("b\n"));
    out.end();
  });
  auto res = srv->serve(make("GET", "/events"));
  CHECK(res.status == 200);
  CHECK(res.content_type == "text/event-stream");
  CHECK(res.body == "retry: 1\n\na\nb\n");
  CHECK(ended);
}

TEST_CASE("a served request whose handler answers from another thread is "
          "waited for") {
  auto srv = std::make_unique<http::server>();
  std::thread later;
  srv->route("GET", "/later", [&](const http::request&, http::responder a) {
    later = std::thread{[a] {
      http::response res;
      res.status = 201;
      a.send(std::move(res));
    }};
  });
  auto res = srv->serve(make("GET", "/later"));
  later.join();
  CHECK(res.status == 201);
}

TEST_CASE("a served request whose handler drops its responder unanswered "
          "gets 500") {
  auto srv = std::make_unique<http::server>();
  srv->route("GET", "/drop", [](const http::request&, http::responder) {});
  auto res = srv->serve(make("GET", "/drop"));
  CHECK(res.status == 500);
  CHECK(json::parse(res.body)["error"]["code"] == "internal");
}
