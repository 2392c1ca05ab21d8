// CPU of a real node process, idle and per execution.
//
// Starts the node binary on the embedded store (a fresh data dir), connects
// W worker processes (children of this program: gRPC workers with 4 pollers
// and max_in_flight 4 each, like the Python SDK's defaults, or C++ CAF
// workers of sdk/cpp with max_in_flight 4), then reads the node's CPU time
// (utime + stime of /proc/<pid>/stat):
//   - over an idle window with every worker connected;
//   - over N executions run one at a time (start, wait for the result);
//   - over N executions run 64 at a time.
// Each execution is one `task` step served by the workers. It prints CPU as
// a share of one core when idle, CPU ms per execution for both loads and
// their ratio. One node per kind of worker. The gRPC workers ask for their
// next task with each completion (want_next), as the Python SDK does.
// `--kind native` runs the same one-step workflow with a native step
// (`call: bench.add_one`, no workers) as the floor: with it, the program
// also prints each kind's CPU per execution as a ratio to the native one.
//
//   node_cpu_bench [--node PATH] [--workers 16] [--idle-s 5]
//                  [--serial 200] [--parallel 2000]
//                  [--kind grpc|caf|native|both|all]

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.grpc.pb.h"
#include "sdk/cpp/caf_worker.hpp"
#include "tests/support/scratch.hpp"
#include "worker.grpc.pb.h"

#ifndef CEREBELUM_BIN
#  define CEREBELUM_BIN "cerebelum"
#endif

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* workflow_yaml = R"(name: cpu_bench
version: "1"
steps:
  - name: work
    task: bench.echo
    queue: cpu_bench
    input: { n: "input.n" }
    timeout: 60s
output: "steps.work"
)";

/// The same workflow with a native step: the floor.
constexpr const char* native_yaml = R"(name: cpu_bench
version: "1"
steps:
  - name: work
    call: bench.add_one
    input: { i: "input.n" }
    timeout: 60s
output: "steps.work"
)";

/// Starts `argv` with stdout and stderr going to `log`.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

void stop(pid_t pid, int sig) {
  if (pid <= 0) return;
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

/// utime + stime of `pid`, in milliseconds.
double cpu_ms(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields{text.substr(close + 2)};
  std::string f;
  unsigned long long utime = 0, stime = 0;
  // Fields after the name start at field 3 (state); utime is 14, stime 15.
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) * 1000.0
         / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

bool file_contains(const fs::path& p, const std::string& needle) {
  std::ifstream in{p};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  return text.find(needle) != std::string::npos;
}

// -- worker children ----------------------------------------------------------

int run_grpc_worker(const std::string& address, const std::string& id) {
  auto channel = grpc::CreateChannel(address,
                                     grpc::InsecureChannelCredentials());
  auto stub = cerebelum::worker::WorkerService::NewStub(channel);
  {
    grpc::ClientContext ctx;
    cerebelum::worker::RegisterRequest req;
    cerebelum::worker::RegisterResponse res;
    req.set_worker_id(id);
    req.add_queues("cpu_bench");
    req.set_max_in_flight(4);
    auto* w = req.add_workflows();
    w->set_name("cpu_bench.yaml");
    w->set_format("yaml");
    w->set_text(workflow_yaml);
    auto st = stub->Register(&ctx, req, &res);
    if (!st.ok()) {
      std::cout << "register failed: " << st.error_message() << std::endl;
      return 1;
    }
  }
  std::cout << "registered" << std::endl;
  std::vector<std::thread> pollers;
  for (int i = 0; i < 4; ++i)
    pollers.emplace_back([&] {
      for (;;) {
        cerebelum::worker::PollTaskRequest req;
        cerebelum::worker::PollTaskResponse res;
        req.set_worker_id(id);
        req.set_wait_ms(30'000);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 40s);
        auto st = stub->PollTask(&ctx, req, &res);
        if (!st.ok()) {
          std::this_thread::sleep_for(100ms);
          continue;
        }
        if (!res.has_task()) continue;
        auto task = res.task();
        for (;;) {
          cerebelum::worker::CompleteTaskRequest done;
          cerebelum::worker::CompleteTaskResponse ack;
          done.set_worker_id(id);
          done.set_attempt_token(task.attempt_token());
          done.set_result_json(task.input_json());
          done.set_want_next(true);
          grpc::ClientContext cctx;
          if (!stub->CompleteTask(&cctx, done, &ack).ok()
              || !ack.has_next_task())
            break;
          task = ack.next_task();
        }
      }
    });
  for (auto& t : pollers)
    t.join();
  return 0;
}

int run_caf_worker(int port, const std::string& id) {
  cerebelum::worker::worker_options opts;
  opts.host = "127.0.0.1";
  opts.port = static_cast<std::uint16_t>(port);
  opts.worker_id = id;
  opts.queues = {"cpu_bench"};
  opts.max_in_flight = 4;
  cerebelum::worker::caf_worker w{opts};
  w.add_workflow("cpu_bench.yaml", "yaml", workflow_yaml);
  w.on("bench.echo", [](const cerebelum::worker::json& input,
                        cerebelum::worker::task_context&) {
    return input;
  });
  w.run();
  return 0;
}

// -- the node ----------------------------------------------------------------

struct options {
  std::string node = CEREBELUM_BIN;
  int workers = 16;
  int idle_s = 5;
  int serial = 200;
  int parallel = 2000;
  std::string kind = "both";
};

class admin_client {
 public:
  explicit admin_client(const std::string& address)
    : stub_(cerebelum::admin::AdminService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    // nop
  }

  /// Whether the node answers.
  bool reachable() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 1s);
    cerebelum::admin::ListWorkflowsRequest req;
    cerebelum::admin::ListWorkflowsResponse res;
    return stub_->ListWorkflows(&ctx, req, &res).ok();
  }

  /// Starts one execution and waits for its result; false on failure.
  bool run_one(int n) {
    cerebelum::admin::StartExecutionRequest req;
    cerebelum::admin::StartExecutionResponse res;
    req.set_workflow("cpu_bench");
    req.set_input_json("{\"n\":" + std::to_string(n) + "}");
    {
      grpc::ClientContext ctx;
      if (!stub_->StartExecution(&ctx, req, &res).ok()) return false;
    }
    cerebelum::admin::WaitForResultRequest wreq;
    cerebelum::admin::ExecutionInfo info;
    wreq.set_execution_id(res.execution().execution_id());
    wreq.set_timeout_ms(60'000);
    grpc::ClientContext ctx;
    if (!stub_->WaitForResult(&ctx, wreq, &info).ok()) return false;
    return info.status() == "completed";
  }

 private:
  std::unique_ptr<cerebelum::admin::AdminService::Stub> stub_;
};

/// Runs `total` executions, `in_flight` at a time; returns the failures.
int run_load(admin_client& admin, int total, int in_flight) {
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < in_flight; ++t)
    threads.emplace_back([&] {
      for (int n; (n = next.fetch_add(1)) < total;)
        if (!admin.run_one(n)) ++failed;
    });
  for (auto& t : threads)
    t.join();
  return failed.load();
}

/// CPU per execution of one kind's run, in ms (negative: the run failed).
struct figures {
  double per1 = -1;
  double per64 = -1;
};

figures run_kind(const options& opts, const std::string& kind) {
  auto dir
    = fs::temp_directory_path()
      / ("cerebelum-cpu-bench-" + std::to_string(::getpid()) + "-" + kind);
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto admin_port = cerebelum::test::free_port();
  auto caf_port = cerebelum::test::free_port();
  auto address = "127.0.0.1:" + std::to_string(admin_port);
  std::vector<std::string> argv{
    opts.node,    "node",
    "--data-dir", (dir / "data").string(),
    "--listen",   address,
    "--http",     "127.0.0.1:" + std::to_string(cerebelum::test::free_port()),
    "--caf-port", std::to_string(caf_port)};
  bool native = kind == "native";
  if (native) {
    fs::create_directories(dir / "workflows");
    std::ofstream{dir / "workflows" / "cpu_bench.yaml"} << native_yaml;
    argv.push_back("--workflows");
    argv.push_back((dir / "workflows").string());
  }
  auto node = spawn(argv, dir / "node.log");
  admin_client admin{address};
  auto self = fs::read_symlink("/proc/self/exe").string();
  // The node is up once it answers; the workers bring the workflow.
  auto up_deadline = clock_type::now() + 60s;
  std::vector<pid_t> workers;
  for (;;) {
    if (admin.reachable()) break;
    if (clock_type::now() > up_deadline) {
      std::cerr << "node did not start; see " << dir / "node.log"
                << "\n";
      stop(node, SIGKILL);
      return {};
    }
    std::this_thread::sleep_for(100ms);
  }
  for (int i = 0; i < (native ? 0 : opts.workers); ++i) {
    auto id = kind + "-" + std::to_string(i);
    auto log = dir / ("worker-" + std::to_string(i) + ".log");
    if (kind == "grpc")
      workers.push_back(spawn({self, "--grpc-worker", address, id}, log));
    else
      workers.push_back(
        spawn({self, "--caf-worker", std::to_string(caf_port), id}, log));
  }
  auto ready_deadline = clock_type::now() + 60s;
  for (int i = 0; i < (native ? 0 : opts.workers); ++i) {
    auto log = dir / ("worker-" + std::to_string(i) + ".log");
    while (!file_contains(log, "registered")) {
      if (clock_type::now() > ready_deadline) {
        std::cerr << "worker " << i << " did not register; see " << log << "\n";
        for (auto w : workers)
          stop(w, SIGKILL);
        stop(node, SIGKILL);
        return {};
      }
      std::this_thread::sleep_for(100ms);
    }
  }
  // Let connection set-up settle before the idle window.
  std::this_thread::sleep_for(2s);
  auto c0 = cpu_ms(node);
  auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::seconds{opts.idle_s});
  auto c1 = cpu_ms(node);
  auto idle_wall
    = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  // Warm-up: a few executions not measured.
  run_load(admin, 20, 4);
  auto c2 = cpu_ms(node);
  auto t2 = clock_type::now();
  auto failed1 = run_load(admin, opts.serial, 1);
  auto c3 = cpu_ms(node);
  auto wall1 = std::chrono::duration<double>(clock_type::now() - t2).count();
  auto t3 = clock_type::now();
  auto failed64 = run_load(admin, opts.parallel, 64);
  auto c4 = cpu_ms(node);
  auto wall64 = std::chrono::duration<double>(clock_type::now() - t3).count();
  for (auto w : workers)
    stop(w, SIGKILL);
  stop(node, SIGTERM);
  auto per1 = (c3 - c2) / opts.serial;
  auto per64 = (c4 - c3) / opts.parallel;
  std::printf("%-5s workers=%d idle: %.2f%% of a core (%.0f ms CPU in %.0f ms)"
              "\n",
              kind.c_str(), native ? 0 : opts.workers,
              100.0 * (c1 - c0) / idle_wall, c1 - c0, idle_wall);
  std::printf("%-5s 1 in flight:  %.3f ms CPU/execution (%d executions, "
              "%.0f/s, %d failed)\n",
              kind.c_str(), per1, opts.serial, opts.serial / wall1, failed1);
  std::printf("%-5s 64 in flight: %.3f ms CPU/execution (%d executions, "
              "%.0f/s, %d failed)\n",
              kind.c_str(), per64, opts.parallel, opts.parallel / wall64,
              failed64);
  std::printf("%-5s ratio 1/64: %.2f\n", kind.c_str(),
              per64 > 0 ? per1 / per64 : 0.0);
  std::fflush(stdout);
  fs::remove_all(dir);
  if (failed1 + failed64 > 0) return {};
  return {per1, per64};
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "--grpc-worker")
    return run_grpc_worker(args[1], args[2]);
  if (args.size() == 3 && args[0] == "--caf-worker")
    return run_caf_worker(std::stoi(args[1]), args[2]);
  options opts;
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    auto& k = args[i];
    auto& v = args[i + 1];
    if (k == "--node")
      opts.node = v;
    else if (k == "--workers")
      opts.workers = std::stoi(v);
    else if (k == "--idle-s")
      opts.idle_s = std::stoi(v);
    else if (k == "--serial")
      opts.serial = std::stoi(v);
    else if (k == "--parallel")
      opts.parallel = std::stoi(v);
    else if (k == "--kind")
      opts.kind = v;
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::printf("nproc=%u node=%s\n", std::thread::hardware_concurrency(),
              opts.node.c_str());
  std::vector<std::string> kinds;
  if (opts.kind == "native" || opts.kind == "all") kinds.push_back("native");
  for (auto* k : {"grpc", "caf"})
    if (opts.kind == k || opts.kind == "both" || opts.kind == "all")
      kinds.push_back(k);
  if (kinds.empty()) {
    std::cerr << "unknown --kind " << opts.kind << "\n";
    return 2;
  }
  int rc = 0;
  std::vector<std::pair<std::string, figures>> runs;
  for (auto& k : kinds) {
    auto f = run_kind(opts, k);
    if (f.per64 < 0) rc = 1;
    runs.emplace_back(k, f);
  }
  auto floor = runs.front();
  if (floor.first == "native" && floor.second.per64 > 0)
    for (auto& [k, f] : runs)
      if (k != "native" && f.per64 > 0)
        std::printf("%-5s CPU/execution as a ratio to native: %.2f at 1 in "
                    "flight, %.2f at 64\n",
                    k.c_str(), f.per1 / floor.second.per1,
                    f.per64 / floor.second.per64);
  return rc;
}
