// Step dispatch round trip through the gRPC WorkerService of an in-process
// node on the embedded store (durable commits), next to a raw gRPC unary
// ping-pong floor measured in the same run (a trivial echo service on
// another port of this process).
//
// Each worker thread has its own channel and runs its own executions of a
// workflow of STEPS sequential task steps. One step cycle, measured by the
// worker: CompleteTask(step k) returned (result committed, which also
// commits step k+1's task row) -> PollTask returns step k+1 ->
// CompleteTask(step k+1) returned. It holds one durable commit, one poll
// answer and one CompleteTask call.
//
//   worker_bench [--steps N] [--workers W]...   (defaults: 200 steps; 1 16)

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/node.hpp"
#include "admin.grpc.pb.h"
#include "src/bridges/servers.hpp"
#include "tests/support/scratch.hpp"
#include "worker.grpc.pb.h"

namespace {

using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

/// The echo service of the floor: Heartbeat answers at once.
class echo_service final : public cerebelum::worker::WorkerService::Service {
 public:
  grpc::Status Heartbeat(grpc::ServerContext*,
                         const cerebelum::worker::HeartbeatRequest* req,
                         cerebelum::worker::HeartbeatResponse* res) override {
    res->set_lease_expires_at_ms(
      static_cast<std::int64_t>(req->ByteSizeLong()));
    return grpc::Status::OK;
  }
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  return v[idx];
}

std::vector<double> floor_run(int port, int workers, int calls) {
  std::vector<std::vector<double>> per(static_cast<std::size_t>(workers));
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&, w] {
      grpc::ChannelArguments args;
      args.SetInt("cerebelum.channel", w); // one connection per thread
      auto ch = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                          grpc::InsecureChannelCredentials(),
                                          args);
      auto stub = cerebelum::worker::WorkerService::NewStub(ch);
      cerebelum::worker::HeartbeatRequest req;
      req.set_worker_id("w" + std::to_string(w));
      req.set_attempt_token("8:bench-id:step/v1/a1/0123456789abcdef");
      for (int i = 0; i < calls + 20; ++i) {
        cerebelum::worker::HeartbeatResponse res;
        grpc::ClientContext ctx;
        auto t0 = clock_type::now();
        auto st = stub->Heartbeat(&ctx, req, &res);
        auto t1 = clock_type::now();
        if (!st.ok()) {
          std::cerr << "echo: " << st.error_message() << '\n';
          return;
        }
        if (i >= 20)
          per[static_cast<std::size_t>(w)].push_back(
            std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    });
  for (auto& t : threads)
    t.join();
  std::vector<double> all;
  for (auto& v : per)
    all.insert(all.end(), v.begin(), v.end());
  return all;
}

std::string workflow_yaml(int steps) {
  std::string y = "name: wbench\nversion: \"1\"\noutput: \"1\"\nsteps:\n";
  for (int i = 0; i < steps; ++i)
    y += "  - name: s" + std::to_string(i)
         + "\n    task: bench.step\n    queue: bench\n";
  return y;
}

struct dispatch_result {
  std::vector<double> cycles_us;
  double seconds = 0;
  int errors = 0;
};

dispatch_result dispatch_run(int port, int workers, int steps) {
  std::vector<std::vector<double>> per(static_cast<std::size_t>(workers));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  auto start = clock_type::now();
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&, w] {
      grpc::ChannelArguments args;
      args.SetInt("cerebelum.channel", w);
      auto ch = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                          grpc::InsecureChannelCredentials(),
                                          args);
      auto stub = cerebelum::worker::WorkerService::NewStub(ch);
      auto admin = cerebelum::admin::AdminService::NewStub(ch);
      auto id = "w" + std::to_string(w) + "-" + std::to_string(workers);
      cerebelum::worker::RegisterRequest reg;
      reg.set_worker_id(id);
      // One queue per worker: each drives its own execution.
      auto queue = "bench-" + id;
      reg.add_queues(queue);
      auto yaml = workflow_yaml(steps);
      std::string needle = "queue: bench\n";
      for (auto p = yaml.find(needle); p != std::string::npos;
           p = yaml.find(needle, p + 1))
        yaml.replace(p, needle.size(), "queue: " + queue + "\n");
      auto* src = reg.add_workflows();
      src->set_name("wbench.yaml");
      src->set_format("yaml");
      auto wf_name = "wbench_" + id;
      yaml.replace(yaml.find("wbench"), 6, wf_name);
      src->set_text(yaml);
      {
        cerebelum::worker::RegisterResponse res;
        grpc::ClientContext ctx;
        auto st = stub->Register(&ctx, reg, &res);
        if (!st.ok()) {
          std::cerr << "register: " << st.error_message() << '\n';
          ++errors;
          return;
        }
      }
      {
        cerebelum::admin::StartExecutionRequest sreq;
        sreq.set_workflow(wf_name);
        cerebelum::admin::StartExecutionResponse sres;
        grpc::ClientContext ctx;
        auto st = admin->StartExecution(&ctx, sreq, &sres);
        if (!st.ok()) {
          std::cerr << "start: " << st.error_message() << '\n';
          ++errors;
          return;
        }
      }
      auto last_done = clock_type::now();
      for (int k = 0; k < steps; ++k) {
        cerebelum::worker::PollTaskRequest preq;
        preq.set_worker_id(id);
        preq.set_wait_ms(10'000);
        cerebelum::worker::PollTaskResponse pres;
        {
          grpc::ClientContext ctx;
          auto st = stub->PollTask(&ctx, preq, &pres);
          if (!st.ok() || !pres.has_task()) {
            ++errors;
            return;
          }
        }
        cerebelum::worker::CompleteTaskRequest creq;
        creq.set_worker_id(id);
        creq.set_attempt_token(pres.task().attempt_token());
        creq.set_result_json("{\"k\":" + std::to_string(k) + "}");
        cerebelum::worker::CompleteTaskResponse cres;
        grpc::ClientContext ctx;
        auto st = stub->CompleteTask(&ctx, creq, &cres);
        auto now = clock_type::now();
        if (!st.ok()) {
          ++errors;
          return;
        }
        if (k > 0)
          per[static_cast<std::size_t>(w)].push_back(
            std::chrono::duration<double, std::micro>(now - last_done).count());
        last_done = now;
      }
    });
  for (auto& t : threads)
    t.join();
  dispatch_result r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  for (auto& v : per)
    r.cycles_us.insert(r.cycles_us.end(), v.begin(), v.end());
  r.errors = errors.load();
  return r;
}

} // namespace

int main(int argc, char** argv) {
  int steps = 200;
  std::vector<int> worker_counts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc)
      steps = std::stoi(argv[++i]);
    else if (a == "--workers" && i + 1 < argc)
      worker_counts.push_back(std::stoi(argv[++i]));
    else {
      std::cerr << "usage: worker_bench [--steps N] [--workers W]...\n";
      return 2;
    }
  }
  if (worker_counts.empty()) worker_counts = {1, 16};
  auto dir = fs::temp_directory_path()
             / ("cerebelum-worker-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  // The floor: an echo service in this process.
  int echo_port = 0;
  echo_service echo;
  grpc::ServerBuilder eb;
  eb.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                      &echo_port);
  eb.RegisterService(&echo);
  auto echo_server = eb.BuildAndStart();

  caf::actor_system_config cfg;
  cerebelum::actors::add_node_message_types(cfg);
  caf::actor_system sys{cfg};
  cerebelum::actors::node_config ncfg;
  ncfg.data_dir = dir;
  int port = cerebelum::test::free_port();
  auto address = "127.0.0.1:" + std::to_string(port);
  ncfg.bridges = [address](auto api, auto tasks) {
    std::vector<cerebelum::supervision::child_spec> specs;
    specs.push_back(cerebelum::api::grpc_server_spec(address, api, tasks));
    return specs;
  };
  auto node = cerebelum::actors::node::start(sys, ncfg);
  if (!node) {
    std::cerr << "node: " << sys.render(node.error()) << '\n';
    return 1;
  }
  std::printf("worker_bench: %d sequential task steps per execution, one "
              "execution per worker, SQLite (synchronous=FULL)\n",
              steps);
  std::printf("%-8s %14s %14s %16s %16s %12s\n", "workers", "floor p50 us",
              "floor p99 us", "dispatch p50 us", "dispatch p99 us", "steps/s");
  for (int w : worker_counts) {
    auto floor = floor_run(echo_port, w, 2000);
    auto d = dispatch_run(port, w, steps);
    auto n = static_cast<double>(d.cycles_us.size());
    auto f50 = percentile(floor, 0.5);
    auto f99 = percentile(floor, 0.99);
    auto d50 = percentile(d.cycles_us, 0.5);
    auto d99 = percentile(d.cycles_us, 0.99);
    std::printf("%-8d %14.1f %14.1f %16.1f %16.1f %12.0f%s\n", w, f50, f99, d50,
                d99, n / d.seconds, d.errors ? "  (errors!)" : "");
  }
  node->stop(std::chrono::seconds{10});
  echo_server->Shutdown();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
