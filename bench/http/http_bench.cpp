// End-to-end benchmark over the HTTP API: a real `cerebelum node` on the
// embedded store (durable commits) runs bench3.yaml, three native calls per
// execution; clients start executions with `?wait=true` and measure
// executions/s and latency from request to finished execution.
//
//   http_bench [--executions N] [--concurrency C]... [--auth token]
//              [--tls DIR]
//   (default 5000; 64 1). With `--auth token` the node requires tokens and
//   every request carries the node's first admin token (docs/security.md).
//   With `--tls DIR` (made by `cerebelum dev-certs DIR`) the node serves
//   HTTPS with DIR/node.pem and the clients trust DIR/ca.pem.

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;
namespace fs = std::filesystem;

struct run_result {
  double per_sec = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int errors = 0;
};

/// The bearer token every request carries ("" without --auth token).
std::string token;

/// The dev-certs directory of --tls ("": plain HTTP).
std::string tls_dir;

/// A client of the node's HTTP API (HTTPS with --tls).
httplib::Client make_client(int port) {
  auto where = "127.0.0.1:" + std::to_string(port);
  if (tls_dir.empty()) return httplib::Client{"http://" + where};
  httplib::Client cli{"https://" + where};
  cli.set_ca_cert_path((fs::path{tls_dir} / "ca.pem").string());
  cli.enable_server_certificate_verification(true);
  return cli;
}

pid_t start_node(const fs::path& dir, int port, const std::string& auth) {
  pid_t pid = ::fork();
  if (pid == 0) {
    auto log = (dir / "node.log").string();
    std::freopen(log.c_str(), "w", stdout);
    std::freopen(log.c_str(), "a", stderr);
    auto data = (dir / "data").string();
    auto wfs = (dir / "workflows").string();
    auto http = "127.0.0.1:" + std::to_string(port);
    auto grpc = "127.0.0.1:" + std::to_string(port + 1);
    auto cert = (fs::path{tls_dir} / "node.pem").string();
    auto key = (fs::path{tls_dir} / "node.key").string();
    if (tls_dir.empty())
      ::execl(CEREBELUM_BIN, CEREBELUM_BIN, "--log-level", "warn", "node",
              "--data-dir", data.c_str(), "--workflows", wfs.c_str(), "--http",
              http.c_str(), "--listen", grpc.c_str(), "--auth", auth.c_str(),
              nullptr);
    else
      ::execl(CEREBELUM_BIN, CEREBELUM_BIN, "--log-level", "warn", "node",
              "--data-dir", data.c_str(), "--workflows", wfs.c_str(), "--http",
              http.c_str(), "--listen", grpc.c_str(), "--auth", auth.c_str(),
              "--tls-cert", cert.c_str(), "--tls-key", key.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

bool wait_ready(int port) {
  auto cli = make_client(port);
  for (int i = 0; i < 300; ++i) {
    if (auto res = cli.Get("/v1/health"); res && res->status == 200)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  return false;
}

/// Transport errors retried (safe: the execution id makes start idempotent).
std::atomic<int> retries{0};

/// One execution; returns its latency or a negative value on a wrong answer.
double one(httplib::Client& cli, const std::string& run_id, int i) {
  auto path = "/v1/workflows/bench3/executions?wait=true&id=" + run_id + "-"
              + std::to_string(i);
  auto body = json{{"i", i}}.dump();
  auto t0 = clock_type::now();
  auto res = cli.Post(path.c_str(), body, "application/json");
  for (int attempt = 0; !res && attempt < 3; ++attempt) {
    ++retries;
    res = cli.Post(path.c_str(), body, "application/json");
  }
  auto dt = std::chrono::duration<double, std::milli>(clock_type::now() - t0);
  if (!res || (res->status != 201 && res->status != 200)) {
    static std::atomic<bool> reported{false};
    if (!reported.exchange(true))
      std::cerr << "first failed request: "
                << (res ? std::to_string(res->status) + " " + res->body
                        : httplib::to_string(res.error()))
                << '\n';
    return -1;
  }
  auto reply = json::parse(res->body, nullptr, false);
  if (reply.is_discarded() || reply["execution"]["result"] != (i + 1) * 2 + 3)
    return -1;
  return dt.count();
}

run_result run(int port, int executions, int concurrency,
               const std::string& run_id) {
  std::atomic<int> next{0};
  std::vector<std::vector<double>> lat(concurrency);
  std::atomic<int> errors{0};
  auto t0 = clock_type::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t)
    threads.emplace_back([&, t] {
      auto cli = make_client(port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(std::chrono::seconds{60});
      if (!token.empty()) cli.set_bearer_token_auth(token);
      for (int i; (i = next++) < executions;) {
        auto ms = one(cli, run_id, i);
        if (ms < 0)
          ++errors;
        else
          lat[t].push_back(ms);
      }
    });
  for (auto& th : threads)
    th.join();
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat)
    all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  run_result r;
  r.per_sec = all.size() / secs;
  r.errors = errors;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return r;
}

} // namespace

int main(int argc, char** argv) {
  int executions = 5000;
  std::vector<int> levels;
  std::string auth = "none";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string opt = argv[i];
    if (opt == "--executions")
      executions = std::stoi(argv[i + 1]);
    else if (opt == "--concurrency")
      levels.push_back(std::stoi(argv[i + 1]));
    else if (opt == "--auth")
      auth = argv[i + 1];
    else if (opt == "--tls")
      tls_dir = fs::absolute(argv[i + 1]).string();
  }
  if (levels.empty()) levels = {64, 1};
  auto dir = fs::temp_directory_path()
             / ("cerebelum-http-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir / "data");
  fs::create_directories(dir / "workflows");
  fs::copy_file(BENCH_WORKFLOW, dir / "workflows" / "bench3.yaml");
  int port = 19800 + ::getpid() % 1000;
  auto pid = start_node(dir, port, auth);
  if (!wait_ready(port)) {
    std::cerr << "node did not become ready; see " << dir / "node.log" << '\n';
    ::kill(pid, SIGKILL);
    return 1;
  }
  if (auth == "token") {
    // Written once the node is ready (its log says so before /v1/health
    // may answer): wait for the file.
    auto file = dir / "data" / "admin.token";
    for (int i = 0; i < 100 && !fs::exists(file); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    std::ifstream in{file};
    std::getline(in, token);
    if (token.empty()) {
      std::cerr << "no admin token in " << file << '\n';
      ::kill(pid, SIGKILL);
      return 1;
    }
  }
  run(port, 200, 16, "warm-up");
  for (int c : levels) {
    retries = 0;
    auto r = run(port, executions, c, "c" + std::to_string(c));
    std::printf("%d executions, %d in flight: %.0f executions/s, p50 %.2f ms, "
                "p99 %.2f ms, %d errors, %d transport retries\n",
                executions, c, r.per_sec, r.p50_ms, r.p99_ms, r.errors,
                retries.load());
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  fs::remove_all(dir);
  return 0;
}
