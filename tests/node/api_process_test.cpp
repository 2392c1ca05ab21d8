// The node's interfaces against the real `cerebelum node` process: the CLI
// (over gRPC) and the HTTP/JSON API, happy paths, bad input and exit codes.

#include <catch2/catch.hpp>

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "tests/node/node_fixture.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/scratch.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
using cerebelum::test::metric_value;

namespace {

/// An order that needs approval (amount > 1000): it sleeps 2 s first.
std::string big_order(const std::string& id) {
  return json{
    {"order_id", id}, {"amount", 1500}, {"items", {{{"sku", "a"}, {"qty", 2}}}}}
    .dump();
}

/// An order that ships without approval.
std::string small_order(const std::string& id) {
  return json{{"order_id", id}, {"amount", 10}, {"items", {{{"sku", "b"}}}}}
    .dump();
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

} // namespace

TEST_CASE("the CLI starts, approves and shows an order to completion") {
  node_process node;
  auto started = node.cli(
    {"start", "order", "--id", "o-1", "--input", big_order("o-1"), "--json"});
  INFO(started.output);
  REQUIRE(started.code == 0);
  CHECK(started.json()["created"] == true);
  auto waiting = node.wait_status("o-1", "awaiting_approval", 30s);
  REQUIRE(waiting["status"] == "awaiting_approval");
  CHECK(waiting["approval_data"]["amount"] == 1500);
  auto approved = node.cli(
    {"approve", "o-1", "--by", "alice", "--data", R"({"note":"ok"})"});
  CHECK(approved.code == 0);
  auto done = node.wait_status("o-1", "completed", 30s);
  REQUIRE(done["status"] == "completed");
  CHECK(done["result"]["shipment"]["shipment_id"] == "ship-o-1");
  auto history = node.cli({"show", "o-1", "--history", "--json"}).json();
  bool granted_by_alice = false;
  for (auto& ev : history["history"])
    if (ev["type"] == "approval_granted")
      granted_by_alice = ev["by"] == "alice" && ev["data"]["note"] == "ok";
  CHECK(granted_by_alice);
  auto again = node.cli({"approve", "o-1", "--by", "alice"});
  CHECK(again.code == 1);
  CHECK(contains(again.output, "FAILED_PRECONDITION"));
  auto listed = node.cli({"list", "--status", "completed", "--json"}).json();
  REQUIRE(listed["executions"].size() == 1);
  CHECK(listed["executions"][0]["execution_id"] == "o-1");
}

TEST_CASE("the CLI rejects and cancels executions and the node records both") {
  node_process node;
  REQUIRE(
    node.cli({"start", "order", "--id", "r", "--input", big_order("r")}).code
    == 0);
  REQUIRE(
    node.cli({"start", "order", "--id", "c", "--input", big_order("c")}).code
    == 0);
  REQUIRE(node.wait_status("r", "awaiting_approval", 30s)["status"]
          == "awaiting_approval");
  CHECK(node.cli({"reject", "r", "--by", "bob", "--reason", "too big"}).code
        == 0);
  auto failed = node.wait_status("r", "failed", 30s);
  CHECK(failed["error"]["kind"] == "order_rejected");
  CHECK(node.cli({"cancel", "c", "--by", "carol", "--reason", "test"}).code
        == 0);
  CHECK(node.wait_status("c", "cancelled", 30s)["status"] == "cancelled");
  CHECK(node.cli({"cancel", "c"}).code == 1);
}

TEST_CASE("the CLI's exit codes: 1 for node errors, 2 for usage errors") {
  node_process node;
  auto unknown = node.cli({"start", "nope"});
  CHECK(unknown.code == 1);
  CHECK(contains(unknown.output, "NOT_FOUND"));
  CHECK(node.cli({"show", "missing"}).code == 1);
  CHECK(node.cli({"approve", "missing", "--by", "x"}).code == 1);
  auto bad_json = node.cli({"start", "order", "--input", "{oops"});
  CHECK(bad_json.code == 2);
  CHECK(contains(bad_json.output, "--input"));
  CHECK(node.cli({"approve", "x"}).code == 2); // --by is required
  CHECK(node.cli({"list", "--status", "done"}).code == 2);
  auto invalid = node.cli({"start", "order", "--input", R"({"amount":1})"});
  CHECK(invalid.code == 1);
  CHECK(contains(invalid.output, "INVALID_ARGUMENT"));
  auto wait_fail = node.cli({"start", "order", "--wait", "--input",
                             R"({"order_id":"x","amount":-1,"items":[]})"});
  CHECK(wait_fail.code == 1);
}

TEST_CASE("the CLI says clearly when no node is reachable") {
  auto res
    = run_cli({"--server", "127.0.0.1:" + std::to_string(free_port()), "list"});
  CHECK(res.code == 1);
  CHECK(contains(res.output, "cannot reach a node at 127.0.0.1:"));
}

TEST_CASE("every command has --help") {
  for (auto cmd :
       {"node", "start", "list", "show", "approve", "reject", "cancel",
        "workflows", "health", "check-upgrade", "events"}) {
    auto res = run_cli({cmd, "--help"});
    INFO(cmd);
    CHECK(res.code == 0);
    CHECK(contains(res.output, "--json") == (std::string{cmd} != "node"));
  }
}

TEST_CASE("GET /metrics shows executions, native steps, timers, commits, "
          "the store and the requests of both APIs moving") {
  node_process node;
  httplib::Client http{"127.0.0.1", node.http_port};
  auto scrape = [&] {
    auto res = http.Get("/metrics");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->get_header_value("Content-Type")
          == "text/plain; version=0.0.4; charset=utf-8");
    return res->body;
  };
  auto before = scrape();
  CHECK(metric_value(before, "cerebelum_store_available") == 1);
  CHECK(metric_value(before, "cerebelum_store_commit_seconds_count") == 0);
  auto small = http.Post("/v1/workflows/order/executions?wait=true&id=m-1",
                         small_order("m-1"), "application/json");
  REQUIRE(small);
  REQUIRE(small->status == 201);
  REQUIRE(
    node.cli({"start", "order", "--id", "m-2", "--input", big_order("m-2")})
      .code
    == 0);
  // The big order sleeps 2 s on a durable timer before its approval.
  REQUIRE(node.wait_status("m-2", "awaiting_approval", 30s)["status"]
          == "awaiting_approval");
  auto text = scrape();
  INFO(text);
  CHECK(metric_value(text,
                     R"(cerebelum_executions_started_total{workflow="order"})")
        == 2);
  CHECK(
    metric_value(
      text,
      R"(cerebelum_executions_finished_total{status="completed",workflow="order"})")
    == 1);
  CHECK(
    metric_value(
      text, R"(cerebelum_execution_duration_seconds_count{workflow="order"})")
    == 1);
  CHECK(
    metric_value(
      text,
      R"(cerebelum_step_duration_seconds_count{kind="native",outcome="completed"})")
    >= 3);
  CHECK(metric_value(text, "cerebelum_timer_lateness_seconds_count") >= 1);
  CHECK(metric_value(text, "cerebelum_store_commit_seconds_count") >= 3);
  CHECK(
    metric_value(
      text,
      R"(cerebelum_api_requests_total{api="http",code="201",route="/v1/workflows/{name}/executions"})")
    == 1);
  CHECK(
    metric_value(
      text,
      R"(cerebelum_api_requests_total{api="grpc",code="OK",route="/cerebelum.admin.AdminService/StartExecution"})")
    == 1);
  // The scrape before counts as a request too.
  CHECK(
    metric_value(
      text,
      R"(cerebelum_api_requests_total{api="http",code="200",route="/metrics"})")
    == 1);
  CHECK(
    metric_value(
      text,
      R"(cerebelum_api_request_seconds_count{api="http",route="/v1/workflows/{name}/executions"})")
    == 1);
}

TEST_CASE("the HTTP API drives an order and rejects bad input") {
  node_process node;
  httplib::Client http{"127.0.0.1", node.http_port};
  auto res = http.Post("/v1/workflows/order/executions?id=h-1",
                       big_order("h-1"), "application/json");
  REQUIRE(res);
  CHECK(res->status == 201);
  auto small = http.Post("/v1/workflows/order/executions?wait=true",
                         small_order("h-2"), "application/json");
  REQUIRE(small);
  CHECK(small->status == 201);
  auto body = json::parse(small->body);
  CHECK(body["execution"]["status"] == "completed");
  CHECK(body["execution"]["result"]["order_id"] == "h-2");
  auto error_code = [&](const httplib::Result& r) {
    REQUIRE(r);
    return std::make_pair(
      r->status, json::parse(r->body)["error"]["code"].get<std::string>());
  };
  using p = std::pair<int, std::string>;
  CHECK(error_code(
          http.Post("/v1/workflows/nope/executions", "{}", "application/json"))
        == p{404, "unknown_workflow"});
  CHECK(error_code(http.Post("/v1/workflows/order/executions", "{bad",
                             "application/json"))
        == p{400, "invalid_argument"});
  CHECK(error_code(http.Get("/v1/executions/missing")) == p{404, "not_found"});
  CHECK(error_code(http.Post("/v1/executions/h-1/approve", R"({"by":"a"})",
                             "application/json"))
        == p{409, "not_awaiting_approval"});
  CHECK(error_code(
          http.Post("/v1/executions/h-1/approve", "{bad", "application/json"))
        == p{400, "invalid_argument"});
  CHECK(error_code(
          http.Post("/v1/executions/missing/cancel", "{}", "application/json"))
        == p{404, "not_found"});
  CHECK(error_code(http.Post("/v1/workflows/order/executions",
                             std::string(2 << 20, ' '), "application/json"))
          .first
        == 413);
  REQUIRE(node.wait_status("h-1", "awaiting_approval", 30s)["status"]
          == "awaiting_approval");
  // Under the HTTP body limit (1 MiB), over the node's payload limit
  // (1,000,000 bytes): refused, naming the size and the limit.
  auto pad = std::string(1'000'100, 'p');
  auto too_large = http.Post(
    "/v1/workflows/order/executions?id=h-big",
    R"({"order_id":"h-big","amount":1,"items":[],"pad":")" + pad + "\"}",
    "application/json");
  CHECK(error_code(too_large) == p{413, "payload_too_large"});
  CHECK(json::parse(too_large->body)["error"]["message"]
        == "input is 1000151 bytes, more than the limit of 1000000 bytes "
           "(--max-payload-bytes)");
  CHECK(error_code(http.Get("/v1/executions/h-big")) == p{404, "not_found"});
  CHECK(error_code(http.Post("/v1/executions/h-1/approve",
                             R"({"by":"a","data":{"pad":")" + pad + "\"}}",
                             "application/json"))
        == p{413, "payload_too_large"});
  auto ok = http.Post("/v1/executions/h-1/approve", R"({"by":"http-op"})",
                      "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(error_code(http.Post("/v1/executions/h-1/approve", R"({"by":"a"})",
                             "application/json"))
          .first
        == 409);
  CHECK(node.wait_status("h-1", "completed", 30s)["status"] == "completed");
  auto hist = http.Get("/v1/executions/h-1/history");
  REQUIRE(hist);
  CHECK(json::parse(hist->body)["events"].back()["type"]
        == "execution_completed");
  auto list = http.Get("/v1/executions?status=completed&workflow=order");
  REQUIRE(list);
  CHECK(json::parse(list->body)["executions"].size() == 2);
}

TEST_CASE("a node whose gRPC or HTTP port is taken fails and names the "
          "address") {
  node_process first;
  for (auto which : {"--listen", "--http"}) {
    temp_dir dir;
    auto taken = "127.0.0.1:"
                 + std::to_string(std::string{which} == "--listen"
                                    ? first.grpc_port
                                    : first.http_port);
    auto other = "127.0.0.1:" + std::to_string(free_port());
    bool grpc_taken = std::string{which} == "--listen";
    child_process second{
      {CEREBELUM_BIN, "node", "--data-dir", dir.path.string(), "--listen",
       grpc_taken ? taken : other, "--http", grpc_taken ? other : taken}};
    auto code = second.wait_exit(30s);
    INFO(second.output());
    REQUIRE(code);
    CHECK(*code == 1);
    CHECK(contains(second.output(), "cannot listen on " + taken));
  }
}

namespace {

/// One HTTP/1.1 exchange on a connected socket: the response's head and
/// body (read to its Content-Length), or empty when the server closed.
std::pair<std::string, std::string> exchange(int fd, const std::string& req) {
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL)
      != static_cast<ssize_t>(req.size()))
    return {};
  std::string in;
  char buf[4096];
  std::size_t head_end = std::string::npos;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    in.append(buf, static_cast<std::size_t>(n));
  }
  auto head = in.substr(0, head_end + 4);
  auto lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) {
                   return std::tolower(c);
                 });
  auto cl = lower.find("content-length:");
  std::size_t length
    = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15));
  while (in.size() < head_end + 4 + length) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    in.append(buf, static_cast<std::size_t>(n));
  }
  return {head, in.substr(head_end + 4, length)};
}

} // namespace

TEST_CASE("the HTTP API answers without waiting for delayed ACKs and keeps "
          "a connection alive for many requests") {
  node_process node;
  int fd = connect_loopback(node.http_port);
  REQUIRE(fd >= 0);
  const std::string req
    = "GET /v1/workflows HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  // Before the server set TCP_NODELAY, each answer's body waited for the
  // client's delayed ACK of its headers: ~40 ms a request, every request.
  // Before it raised httplib's keep-alive limit, the 5th answer said
  // "Connection: close" and the connection ended.
  std::vector<double> ms;
  for (int i = 0; i < 40; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto [head, body] = exchange(fd, req);
    ms.push_back(std::chrono::duration<double, std::milli>(
                   std::chrono::steady_clock::now() - t0)
                   .count());
    INFO("request " << i << ": " << head);
    REQUIRE(contains(head, "HTTP/1.1 200"));
    CHECK_FALSE(contains(head, "Connection: close"));
    CHECK(contains(body, "order"));
  }
  ::close(fd);
  std::sort(ms.begin(), ms.end());
  INFO("median " << ms[ms.size() / 2] << " ms");
  // The delayed ACK is 40 ms; an answer from memory is well under 1 ms.
  CHECK(ms[ms.size() / 2] < 20.0);
}

TEST_CASE("GET .../events?follow=true streams an order's events live until "
          "it ends, and resumes after Last-Event-ID") {
  node_process node;
  httplib::Client http{"127.0.0.1", node.http_port};
  auto res = http.Post("/v1/workflows/order/executions?id=f-1",
                       big_order("f-1"), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 201);
  std::mutex mtx;
  std::condition_variable cv;
  std::string got;
  std::optional<httplib::Result> follow;
  std::thread follower{[&] {
    httplib::Client streaming{"127.0.0.1", node.http_port};
    streaming.set_read_timeout(30, 0);
    follow.emplace(streaming.Get("/v1/executions/f-1/events?follow=true",
                                 [&](const char* data, std::size_t n) {
                                   std::lock_guard<std::mutex> guard{mtx};
                                   got.append(data, n);
                                   cv.notify_all();
                                   return true;
                                 }));
  }};
  {
    // The approval is asked for after the order's 2 s cool-down: the event
    // arrives on the open stream when it is committed.
    std::unique_lock<std::mutex> guard{mtx};
    REQUIRE(cv.wait_for(guard, 20s, [&] {
      return contains(got, "event: approval_requested");
    }));
    CHECK_FALSE(contains(got, "event: end"));
  }
  auto approved = http.Post("/v1/executions/f-1/approve", R"({"by":"alice"})",
                            "application/json");
  REQUIRE(approved);
  CHECK(approved->status == 200);
  follower.join();
  REQUIRE(follow);
  REQUIRE(*follow);
  CHECK((*follow)->status == 200);
  CHECK((*follow)->get_header_value("Content-Type")
        == "text/event-stream; charset=utf-8");
  CHECK(contains(got, "id: 0\nevent: execution_started\ndata: {"));
  CHECK(contains(got, "event: approval_granted"));
  CHECK(contains(got, "\"by\":\"alice\""));
  CHECK(contains(got, "event: execution_completed"));
  // The end names where a later follow would start.
  auto hist = http.Get("/v1/executions/f-1/history");
  REQUIRE(hist);
  auto events = json::parse(hist->body)["events"];
  auto last = events.back()["seq"].get<std::int64_t>();
  CHECK(contains(got, "event: end\ndata: {\"execution_id\":\"f-1\","
                      "\"next_seq\":"
                        + std::to_string(last + 1) + "}\n\n"));
  // Every event once, in order.
  for (std::int64_t seq = 0; seq <= last; ++seq)
    CHECK(contains(got, "\nid: " + std::to_string(seq) + "\nevent: "));
  // A reconnecting EventSource sends the last id it saw.
  auto resumed = http.Get("/v1/executions/f-1/events?follow=true",
                          {{"Last-Event-ID", std::to_string(last - 1)}});
  REQUIRE(resumed);
  CHECK_FALSE(
    contains(resumed->body, "id: " + std::to_string(last - 1) + "\n"));
  CHECK(contains(resumed->body, "id: " + std::to_string(last) + "\n"));
  CHECK(contains(resumed->body, "event: end"));
  auto missing = http.Get("/v1/executions/nope/events?follow=true");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  auto bad = http.Get("/v1/executions/f-1/events?follow=maybe");
  REQUIRE(bad);
  CHECK(bad->status == 400);
}

TEST_CASE("cerebelum events --follow prints an order's events as they are "
          "recorded and exits 0 when it completes") {
  node_process node;
  REQUIRE(
    node.cli({"start", "order", "--id", "ev-1", "--input", big_order("ev-1")})
      .code
    == 0);
  child_process follow{{CEREBELUM_BIN, "--server",
                        "127.0.0.1:" + std::to_string(node.grpc_port), "events",
                        "ev-1", "--follow"}};
  // Printed when recorded, after the order's 2 s cool-down: the command is
  // still following then.
  REQUIRE(follow.wait_for_line("approval_requested", 20s));
  CHECK_FALSE(follow.wait_exit(200ms));
  REQUIRE(node.cli({"approve", "ev-1", "--by", "alice"}).code == 0);
  auto code = follow.wait_exit(20s);
  INFO(follow.output());
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(contains(follow.output(), "approval_granted"));
  CHECK(contains(follow.output(), "execution_completed"));
  // The same lines as the recorded history, one per event.
  auto history = node.cli({"events", "ev-1", "--json"});
  REQUIRE(history.code == 0);
  std::istringstream lines{history.output};
  std::string line;
  std::int64_t seq = 0;
  while (std::getline(lines, line))
    CHECK(json::parse(line)["seq"] == seq++);
  CHECK(std::count(follow.output().begin(), follow.output().end(), '\n')
        == seq);
  auto tail = node.cli(
    {"events", "ev-1", "--from-seq", std::to_string(seq - 1), "--json"});
  CHECK(json::parse(tail.output)["type"] == "execution_completed");
  auto unknown = node.cli({"events", "nope", "--follow"});
  CHECK(unknown.code == 1);
  CHECK(contains(unknown.output, "NOT_FOUND"));
}
