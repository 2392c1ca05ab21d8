#include "tests/workers/worker_client.hpp"

#include <thread>

namespace cerebelum::test {

using namespace std::chrono_literals;

std::unique_ptr<grpc::ClientContext> context_for(std::chrono::milliseconds d) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + d);
  return ctx;
}

worker_client::worker_client(int port) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(8 * 1024 * 1024);
  channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials(),
                                       args);
  workers_ = worker::WorkerService::NewStub(channel_);
  admin_ = admin::AdminService::NewStub(channel_);
}

grpc::Status worker_client::register_worker(const std::string& id,
                                            std::vector<std::string> queues,
                                            const std::string& yaml,
                                            std::uint32_t max_in_flight,
                                            worker::RegisterResponse* out) {
  worker::RegisterRequest req;
  req.set_worker_id(id);
  for (auto& q : queues)
    req.add_queues(q);
  if (!yaml.empty()) {
    auto* w = req.add_workflows();
    w->set_name("test.yaml");
    w->set_format("yaml");
    w->set_text(yaml);
  }
  req.set_max_in_flight(max_in_flight);
  worker::RegisterResponse res;
  auto ctx = context_for();
  auto st = workers_->Register(ctx.get(), req, &res);
  if (out) *out = res;
  return st;
}

grpc::Status worker_client::poll(const std::string& worker,
                                 std::optional<worker::Task>& task,
                                 std::chrono::milliseconds wait,
                                 std::vector<std::string> queues) {
  worker::PollTaskRequest req;
  req.set_worker_id(worker);
  req.set_wait_ms(wait.count());
  for (auto& q : queues)
    req.add_queues(q);
  worker::PollTaskResponse res;
  auto ctx = context_for(wait + 10s);
  auto st = workers_->PollTask(ctx.get(), req, &res);
  task.reset();
  if (st.ok() && res.has_task()) task = res.task();
  return st;
}

std::optional<worker::Task>
worker_client::poll_until(const std::string& worker,
                          std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    std::optional<worker::Task> t;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    auto st = poll(worker, t, std::max(left, 1ms));
    if (!st.ok()) return std::nullopt;
    if (t) return t;
  }
  return std::nullopt;
}

grpc::Status
worker_client::complete(const std::string& worker, const std::string& token,
                        const std::string& result_json, bool* recorded) {
  worker::CompleteTaskRequest req;
  req.set_worker_id(worker);
  req.set_attempt_token(token);
  req.set_result_json(result_json);
  worker::CompleteTaskResponse res;
  auto ctx = context_for();
  auto st = workers_->CompleteTask(ctx.get(), req, &res);
  if (recorded) *recorded = res.recorded();
  return st;
}

grpc::Status worker_client::fail(const std::string& worker,
                                 const std::string& token,
                                 const std::string& kind, bool retryable) {
  worker::CompleteTaskRequest req;
  req.set_worker_id(worker);
  req.set_attempt_token(token);
  req.mutable_error()->set_kind(kind);
  req.mutable_error()->set_message("failed by the test");
  req.mutable_error()->set_retryable(retryable);
  worker::CompleteTaskResponse res;
  auto ctx = context_for();
  return workers_->CompleteTask(ctx.get(), req, &res);
}

grpc::Status worker_client::heartbeat(const std::string& worker,
                                      const std::string& token,
                                      const std::string& details,
                                      worker::HeartbeatResponse* out) {
  worker::HeartbeatRequest req;
  req.set_worker_id(worker);
  req.set_attempt_token(token);
  req.set_details_json(details);
  worker::HeartbeatResponse res;
  auto ctx = context_for();
  auto st = workers_->Heartbeat(ctx.get(), req, &res);
  if (out) *out = res;
  return st;
}

std::string worker_client::start(const std::string& workflow,
                                 const std::string& input_json,
                                 const std::string& id) {
  admin::StartExecutionRequest req;
  req.set_workflow(workflow);
  req.set_input_json(input_json);
  req.set_execution_id(id);
  admin::StartExecutionResponse res;
  auto ctx = context_for();
  auto st = admin_->StartExecution(ctx.get(), req, &res);
  if (!st.ok())
    throw std::runtime_error("StartExecution: " + st.error_message());
  return res.execution().execution_id();
}

admin::ExecutionInfo worker_client::wait(const std::string& id,
                                         std::chrono::milliseconds timeout) {
  admin::WaitForResultRequest req;
  req.set_execution_id(id);
  req.set_timeout_ms(static_cast<std::uint32_t>(timeout.count()));
  admin::ExecutionInfo info;
  auto ctx = context_for(timeout + 10s);
  auto st = admin_->WaitForResult(ctx.get(), req, &info);
  if (!st.ok()) return describe(id);
  return info;
}

admin::ExecutionInfo worker_client::describe(const std::string& id) {
  admin::DescribeExecutionRequest req;
  req.set_execution_id(id);
  admin::ExecutionInfo info;
  auto ctx = context_for();
  auto st = admin_->DescribeExecution(ctx.get(), req, &info);
  if (!st.ok()) throw std::runtime_error("Describe: " + st.error_message());
  return info;
}

std::vector<events::Event> worker_client::history(const std::string& id) {
  admin::GetHistoryRequest req;
  req.set_execution_id(id);
  admin::GetHistoryResponse res;
  auto ctx = context_for();
  auto st = admin_->GetHistory(ctx.get(), req, &res);
  if (!st.ok()) throw std::runtime_error("GetHistory: " + st.error_message());
  return {res.events().begin(), res.events().end()};
}

int count_events(const std::vector<events::Event>& h,
                 events::Event::PayloadCase c, const std::string& step) {
  int n = 0;
  for (auto& ev : h) {
    if (ev.payload_case() != c) continue;
    if (!step.empty()) {
      std::string s;
      if (ev.has_step_completed()) s = ev.step_completed().step();
      if (ev.has_step_failed()) s = ev.step_failed().step();
      if (ev.has_step_scheduled()) s = ev.step_scheduled().step();
      if (s != step) continue;
    }
    ++n;
  }
  return n;
}

} // namespace cerebelum::test
