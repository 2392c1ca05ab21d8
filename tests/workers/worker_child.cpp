// A worker process for crash tests: registers, polls one task of its queue,
// prints "leased <attempt token>" and heartbeats until it is killed.
//
//   worker_child PORT WORKER_ID QUEUE

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "tests/workers/worker_client.hpp"

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc != 4) {
    std::cerr << "usage: worker_child PORT WORKER_ID QUEUE\n";
    return 2;
  }
  cerebelum::test::worker_client client{std::stoi(argv[1])};
  std::string id = argv[2];
  auto st = client.register_worker(id, {argv[3]});
  if (!st.ok()) {
    std::cerr << "register: " << st.error_message() << '\n';
    return 1;
  }
  auto task = client.poll_until(id, 60s);
  if (!task) {
    std::cerr << "no task\n";
    return 1;
  }
  std::cout << "leased " << task->attempt_token() << std::endl;
  for (;;) {
    client.heartbeat(id, task->attempt_token(), "{\"working\":true}");
    std::this_thread::sleep_for(100ms);
  }
}
