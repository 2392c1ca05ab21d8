// Hostile input against the real `cerebelum node` process: every request
// below once killed the node, stored data that could never be read back, or
// let a body set parameters. Each test sends it for real and then checks
// that the node is still up and answers other clients.

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <httplib.h>

#include "tests/node/node_fixture.hpp"
#include "tests/support/rng.hpp"
#include "tests/workers/worker_client.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace admin = cerebelum::admin;

namespace {

/// What a raw HTTP exchange returned: the status (0 when the connection
/// closed without a status line) and the body.
struct raw_reply {
  int status = 0;
  std::string body;
};

/// Sends `request` as raw bytes on a new connection and reads until the
/// server closes it (requests say `Connection: close`) or `timeout`.
raw_reply raw_http(int port, const std::string& request,
                   std::chrono::milliseconds timeout = 5s) {
  raw_reply out;
  int fd = connect_loopback(port);
  if (fd < 0) return out;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent,
                    MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  // Reads until the server closes or one whole response has arrived (a
  // mutated request may have lost its `Connection: close`).
  std::string data;
  char buf[4096];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    auto end = data.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    auto cl = data.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) continue;
    auto length = std::strtoul(data.c_str() + cl + 16, nullptr, 10);
    if (data.size() >= end + 4 + length) break;
  }
  ::close(fd);
  if (data.rfind("HTTP/1.", 0) == 0 && data.size() > 12)
    out.status = std::atoi(data.c_str() + 9);
  if (auto p = data.find("\r\n\r\n"); p != std::string::npos)
    out.body = data.substr(p + 4);
  return out;
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
}

std::string post(const std::string& target, const std::string& body,
                 const std::string& type = "application/json") {
  return "POST " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
         + "Content-Type: " + type + "\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// JSON text nested `depth` arrays deep inside {"n": ...}.
std::string deep_json(int depth) {
  return "{\"n\": " + std::string(static_cast<std::size_t>(depth), '[')
         + std::string(static_cast<std::size_t>(depth), ']') + "}";
}

/// "{},{},..." of at least `bytes` bytes: JSON whose parsed form is ~35
/// times its text.
std::string empty_objects(std::size_t bytes) {
  std::string items = "{}";
  while (items.size() < bytes)
    items += ",{}";
  return items;
}

/// The error code of an error body (empty when the body is not one).
std::string error_code(const raw_reply& r) {
  auto body = json::parse(r.body, nullptr, false);
  if (body.is_discarded() || !body.contains("error")) return {};
  return body["error"].value("code", "");
}

std::string error_message(const raw_reply& r) {
  auto body = json::parse(r.body, nullptr, false);
  if (body.is_discarded() || !body.contains("error")) return {};
  return body["error"].value("message", "");
}

/// The node answers a plain request and has not exited.
void require_alive(node_process& node) {
  INFO(node.process().output());
  REQUIRE_FALSE(node.process().wait_exit(0ms).has_value());
  auto r = raw_http(node.http_port, get("/v1/workflows"));
  REQUIRE(r.status == 200);
}

std::size_t execution_count(node_process& node) {
  auto r = raw_http(node.http_port, get("/v1/executions?page_size=1000"));
  REQUIRE(r.status == 200);
  return json::parse(r.body)["executions"].size();
}

} // namespace

TEST_CASE("an unmatched path with an invalid UTF-8 byte answers 404 instead "
          "of killing the node") {
  node_process node;
  for (auto* path : {"/%ff", "/v2/%ff%fe/x", "/%c0%af", "/a%00b"}) {
    auto r = raw_http(node.http_port, get(path));
    INFO(path << " -> " << r.status << " " << r.body);
    CHECK(r.status == 404);
    CHECK(error_code(r) == "not_found");
  }
  auto r = raw_http(node.http_port, get("/%ff"));
  CHECK(error_message(r).find("\\xff") != std::string::npos);
  require_alive(node);
}

TEST_CASE("invalid UTF-8 in a route or a query value answers 400 naming the "
          "field") {
  node_process node;
  auto r = raw_http(node.http_port, get("/v1/executions/%ff"));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("execution id") != std::string::npos);
  r = raw_http(node.http_port, get("/v1/executions?status=%FF"));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("status") != std::string::npos);
  r = raw_http(node.http_port, get("/v1/executions?workflow=%FF"));
  CHECK(r.status == 400);
  r = raw_http(node.http_port, post("/v1/workflows/%ff/executions", "{}"));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("workflow") != std::string::npos);
  require_alive(node);
}

TEST_CASE("a start with an invalid UTF-8 id or by is refused and stores "
          "nothing") {
  node_process node;
  auto r = raw_http(node.http_port,
                    post("/v1/workflows/hostile/executions?id=%FF%FE",
                         R"({"n": 1})"));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("id") != std::string::npos);
  r = raw_http(node.http_port,
               post("/v1/workflows/hostile/executions?id=ok-1&by=%FF",
                    R"({"n": 1})"));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("by") != std::string::npos);
  r = raw_http(node.http_port,
               post("/v1/workflows/hostile/executions?id=a%0Ab", "{}"));
  CHECK(r.status == 400);
  CHECK(execution_count(node) == 0);
  // A 1 MB operator name is refused too (the limit is 200 bytes).
  r = raw_http(node.http_port,
               post("/v1/workflows/hostile/executions?id=ok-2&by="
                      + std::string(1'000'000, 'a'),
                    R"({"n": 1})"));
  CHECK(r.status != 201);
  CHECK(execution_count(node) == 0);
  // Listing, and a restart with the same data dir, still work.
  r = raw_http(node.http_port,
               post("/v1/workflows/hostile/executions?id=ok-3", R"({"n": 1})"));
  CHECK(r.status == 201);
  CHECK(execution_count(node) == 1);
  require_alive(node);
}

TEST_CASE("invalid UTF-8 in a gRPC request is refused and stores nothing") {
  node_process node;
  worker_client client{node.grpc_port};
  for (auto [id, by] : {std::pair<std::string, std::string>{"\xff\xfe", "x"},
                        {"ok-id", "\xff"},
                        {"ok-id", std::string(1000, 'b')}}) {
    admin::StartExecutionRequest req;
    req.set_workflow("hostile");
    req.set_input_json(R"({"n": 1})");
    req.set_execution_id(id);
    req.set_started_by(by);
    admin::StartExecutionResponse res;
    auto ctx = context_for();
    auto st = client.admin().StartExecution(ctx.get(), req, &res);
    INFO(st.error_message());
    CHECK_FALSE(st.ok());
  }
  CHECK(execution_count(node) == 0);
  require_alive(node);
}

TEST_CASE("an input just under the HTTP body limit, over the payload "
          "limit, answers 413 payload_too_large, not 500") {
  node_process node;
  auto items = empty_objects(1024 * 1024 - 40);
  auto body = R"({"n": 1, "a": [)" + items + "]}";
  REQUIRE(body.size() < 1024 * 1024);
  auto r = raw_http(node.http_port,
                    post("/v1/workflows/hostile/executions?id=big", body));
  INFO(r.body);
  CHECK(r.status == 413);
  CHECK(error_message(r).find("limit of 1000000 bytes") != std::string::npos);
  CHECK(execution_count(node) == 0);
  require_alive(node);
}

TEST_CASE("64 clients sending 1 MiB JSON bodies at once leave the node's "
          "memory bounded") {
  node_process node;
  auto items = empty_objects(1024 * 1024 - 40);
  // Parsed, each body is ~350,000 objects (~35 MB); it is refused after
  // parsing (data over the payload limit: 413, or no such execution: 404),
  // so only the front end's memory counts.
  auto request = post("/v1/executions/nope/approve",
                      R"({"by": "x", "data": [)" + items + "]}");
  std::atomic<int> done{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 64; ++c)
    clients.emplace_back([&] {
      for (int i = 0; i < 2; ++i)
        if (auto st = raw_http(node.http_port, request, 60s).status;
            st == 413 || st == 404 || st == 503)
          ++answered; // 503: no slot for a large request freed up in time
      ++done;
    });
  long peak = 0;
  while (done < 64) {
    peak = std::max(peak, proc_status_kib(node.process().pid(), "VmRSS"));
    std::this_thread::sleep_for(20ms);
  }
  for (auto& t : clients)
    t.join();
  auto after = proc_status_kib(node.process().pid(), "VmRSS");
  WARN("peak RSS " << peak / 1024 << " MiB, after " << after / 1024 << " MiB, "
                   << answered << " of 128 answered 413, 404 or 503");
  // With cpp-httplib's server (listen backlog 5) the rest lost their
  // connection; the Beast server's backlog is 4096.
  CHECK(answered >= 64);
  CHECK(peak < 800 * 1024);
  CHECK(after < 300 * 1024);
  require_alive(node);
}

TEST_CASE("a JSON body sent as a form cannot set query parameters") {
  node_process node;
  auto body = R"({"n": 1, "s": "&id=chosen&by=%FF"})";
  auto r = raw_http(node.http_port,
                    post("/v1/workflows/hostile/executions", body,
                         "application/x-www-form-urlencoded"));
  INFO(r.body);
  REQUIRE(r.status == 201);
  auto started = json::parse(r.body)["execution"];
  CHECK(started["execution_id"] != "chosen");
  CHECK(started["input"]["s"] == "&id=chosen&by=%FF");
  auto history
    = raw_http(node.http_port,
               get("/v1/executions/"
                   + started["execution_id"].get<std::string>() + "/history"));
  REQUIRE(history.status == 200);
  CHECK(json::parse(history.body)["events"][0]["started_by"] == "http");
}

TEST_CASE("JSON nested 100,000 levels is refused over HTTP instead of "
          "overflowing the node's stack") {
  node_process node;
  auto deep = deep_json(100'000);
  auto r = raw_http(node.http_port,
                    post("/v1/workflows/hostile/executions?id=d", deep));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("nested deeper than 128") != std::string::npos);
  r = raw_http(node.http_port, post("/v1/executions/d/approve",
                                    R"({"by": "x", "data": )" + deep + "}"));
  CHECK(r.status == 400);
  // 128 levels still pass.
  r = raw_http(node.http_port,
               post("/v1/workflows/hostile/executions?id=ok", deep_json(127)));
  CHECK(r.status == 201);
  require_alive(node);
}

TEST_CASE("a number out of range answers 400, not 500") {
  node_process node;
  auto r = raw_http(node.http_port, post("/v1/workflows/hostile/executions",
                                         R"({"n": 1e999})"));
  CHECK(r.status == 400);
  CHECK(error_message(r).find("out of range") != std::string::npos);
  worker_client client{node.grpc_port};
  admin::StartExecutionRequest req;
  req.set_workflow("hostile");
  req.set_input_json(R"({"n": 1e999})");
  admin::StartExecutionResponse res;
  auto ctx = context_for();
  auto st = client.admin().StartExecution(ctx.get(), req, &res);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  require_alive(node);
}

TEST_CASE("JSON nested 100,000 levels is refused over gRPC and the history "
          "stays readable") {
  node_process node;
  worker_client client{node.grpc_port};
  auto deep = deep_json(100'000);
  {
    admin::StartExecutionRequest req;
    req.set_workflow("hostile");
    req.set_input_json(deep);
    admin::StartExecutionResponse res;
    auto ctx = context_for();
    auto st = client.admin().StartExecution(ctx.get(), req, &res);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto id = client.start("hostile", R"({"n": 7})", "g-1");
  REQUIRE(client.register_worker("w1", {"hq"}).ok());
  auto task = client.poll_until("w1", 30s);
  REQUIRE(task);
  // A heartbeat's details are stored as a progress event: refused when deep.
  auto hb = client.heartbeat("w1", task->attempt_token(), deep);
  CHECK(hb.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  auto done = client.complete("w1", task->attempt_token(), deep);
  CHECK(done.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  REQUIRE(client.complete("w1", task->attempt_token(), R"({"ok": true})").ok());
  // Now it awaits approval: deep approval data is refused.
  for (int i = 0; i < 300; ++i) {
    if (client.describe(id).status() == "awaiting_approval") break;
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(client.describe(id).status() == "awaiting_approval");
  {
    admin::ApproveRequest req;
    req.set_execution_id(id);
    req.set_by("alice");
    req.set_data_json(deep);
    admin::ExecutionInfo res;
    auto ctx = context_for();
    auto st = client.admin().Approve(ctx.get(), req, &res);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto history = raw_http(node.http_port, get("/v1/executions/g-1/history"));
  CHECK(history.status == 200);
  auto shown = node.cli({"show", "g-1", "--history"});
  INFO(shown.output);
  CHECK(shown.code == 0);
  require_alive(node);
}

TEST_CASE("a worker id or a queue with a newline cannot forge log lines") {
  node_process node;
  worker_client client{node.grpc_port};
  auto st = client.register_worker("w\n[info] node stopped cleanly", {"hq"});
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find("worker_id") != std::string::npos);
  st = client.register_worker("w2", {"hq\nx"});
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(node.process().output().find("\n[info] node stopped cleanly")
        == std::string::npos);
  require_alive(node);
}

TEST_CASE("a random mutation run of HTTP requests kills nothing") {
  node_process node;
  auto seed = static_cast<unsigned>(cerebelum::test::test_seed());
  INFO("seed " << seed);
  const std::vector<std::string> seeds = {
    get("/v1/executions?status=running&page_size=10"),
    get("/v1/executions/abc/history?from_seq=0"),
    get("/v1/workflows"),
    post("/v1/workflows/hostile/executions?id=m&wait=false", R"({"n": 1})"),
    post("/v1/executions/m/approve", R"({"by": "a", "data": {"x": [1]}})"),
    post("/v1/executions/m/cancel", R"({"by": "a", "reason": "r"})"),
  };
  const std::vector<std::string> specials
    = {"%ff", "%00",  "%0a", "\xff", "\xc0\xaf", "[[[[[[[[", "1e999",
       "%",   "\r\n", "\"",  "?",    "&by=",     "/"};
  // 16 clients at once: a mutated request that leaves the server waiting
  // for more bytes costs its client the 500 ms read timeout.
  constexpr int clients = 16;
  constexpr int per_client = 200;
  std::mutex mtx;
  std::map<int, int> statuses;
  std::atomic<int> sent{0};
  std::atomic<bool> dead{false};
  auto deadline = std::chrono::steady_clock::now() + 60s;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      std::mt19937 rng{seed + static_cast<unsigned>(c)};
      for (int i = 0; i < per_client && !dead
                      && std::chrono::steady_clock::now() < deadline;
           ++i) {
        auto req = seeds[rng() % seeds.size()];
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !req.empty(); ++e) {
          auto pos = rng() % req.size();
          switch (rng() % 4) {
            case 0: req[pos] = static_cast<char>(rng() % 256); break;
            case 1: req.insert(pos, specials[rng() % specials.size()]); break;
            case 2: req.erase(pos, 1 + rng() % 8); break;
            default: req.insert(pos, std::string(1 + rng() % 2000, '['));
          }
        }
        auto r = raw_http(node.http_port, req, 500ms);
        ++sent;
        std::lock_guard<std::mutex> guard{mtx};
        ++statuses[r.status];
      }
    });
  while (sent < clients * per_client
         && std::chrono::steady_clock::now() < deadline) {
    if (node.process().wait_exit(50ms)) {
      dead = true;
      break;
    }
  }
  for (auto& t : threads)
    t.join();
  std::string summary;
  for (auto& [status, n] : statuses)
    summary += " " + std::to_string(status) + ":" + std::to_string(n);
  WARN("HTTP mutation run: " << sent << " requests from " << clients
                             << " clients, statuses" << summary << ", seed "
                             << seed);
  require_alive(node);
  auto rss = proc_status_kib(node.process().pid(), "VmRSS");
  WARN("node RSS after the run: " << rss / 1024 << " MiB");
  CHECK(rss < 512 * 1024);
  CHECK(sent >= 2000);
  CHECK(statuses[500] == 0);
}

TEST_CASE("SIGTERM while busy never aborts the node when the stop times "
          "out") {
  // A 1 ms timeout makes the stop time out on a busy node every time: the
  // node must then exit with 1, never abort while tearing down.
  int timed_out = 0;
  for (int round = 0; round < 3; ++round) {
    temp_dir dir;
    auto http_port = free_port();
    child_process proc{{CEREBELUM_BIN, "node", "--data-dir", dir.path.string(),
                        "--workflows", CEREBELUM_BENCH_WORKFLOWS, "--listen",
                        "127.0.0.1:" + std::to_string(free_port()), "--http",
                        "127.0.0.1:" + std::to_string(http_port),
                        "--shutdown-timeout", "0.001"}};
    REQUIRE(proc.wait_for_line("node ready", 30s));
    // Load: 8 clients start executions back to back.
    std::atomic<bool> stop{false};
    std::atomic<int> started{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c)
      clients.emplace_back([&] {
        httplib::Client cli{"127.0.0.1", http_port};
        cli.set_connection_timeout(2s);
        cli.set_read_timeout(5s);
        while (!stop) {
          auto r = cli.Post("/v1/workflows/bench3/executions", R"({"i": 1})",
                            "application/json");
          if (r && r->status == 201) ++started;
        }
      });
    while (started < 300 && !proc.wait_exit(10ms)) {
      // keep the node busy until it has started a few hundred executions
    }
    proc.signal(SIGTERM);
    auto code = proc.wait_exit(30s);
    stop = true;
    for (auto& t : clients)
      t.join();
    INFO("round " << round << ", exit " << (code ? *code : -1) << "\n"
                  << proc.output());
    REQUIRE(code.has_value());
    CHECK(*code < 128); // not killed by a signal (SIGABRT is 134)
    CHECK(proc.output().find("pure virtual") == std::string::npos);
    if (proc.output().find("did not stop within") != std::string::npos)
      ++timed_out;
  }
  CHECK(timed_out > 0);
}
