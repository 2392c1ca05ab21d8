#include "actors/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <sstream>

namespace cerebelum::actors {

namespace {

/// Latencies from 0.5 ms to 60 s.
const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  return b;
}

/// Executions last from milliseconds to days.
const prometheus::Histogram::BucketBoundaries& execution_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
    0.001, 0.005, 0.025, 0.1,  0.5,   1,     5,     30,
    60,    300,   1800,  3600, 21600, 86400, 604800};
  return b;
}

/// Appends per transaction: 1 to the writer's largest group.
const prometheus::Histogram::BucketBoundaries& group_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  return b;
}

} // namespace

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

} // namespace

stopwatch::stopwatch() : began_ns_(steady_ns()) {}

double stopwatch::seconds() const {
  return static_cast<double>(steady_ns() - began_ns_) / 1e9;
}

node_metrics::node_metrics()
  : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  started_ = &prometheus::BuildCounter()
                .Name("cerebelum_executions_started_total")
                .Help("Executions started, by workflow")
                .Register(r);
  finished_ = &prometheus::BuildCounter()
                 .Name("cerebelum_executions_finished_total")
                 .Help("Executions ended, by workflow and status (completed, "
                       "failed, cancelled)")
                 .Register(r);
  execution_seconds_
    = &prometheus::BuildHistogram()
         .Name("cerebelum_execution_duration_seconds")
         .Help("From an execution's start to its end, by workflow")
         .Register(r);
  step_seconds_
    = &prometheus::BuildHistogram()
         .Name("cerebelum_step_duration_seconds")
         .Help("A step attempt: a native function's run time (kind native), "
               "or from when a task could run to its worker's outcome (kind "
               "task), by outcome")
         .Register(r);
  commit_seconds_ = &prometheus::BuildHistogram()
                       .Name("cerebelum_store_commit_seconds")
                       .Help("One group commit of the store writer")
                       .Register(r)
                       .Add({}, latency_buckets());
  commit_group_ = &prometheus::BuildHistogram()
                     .Name("cerebelum_store_commit_group_size")
                     .Help("Appends committed in one transaction")
                     .Register(r)
                     .Add({}, group_buckets());
  timer_lateness_ = &prometheus::BuildHistogram()
                       .Name("cerebelum_timer_lateness_seconds")
                       .Help("How late a durable timer fired after its moment")
                       .Register(r)
                       .Add({}, latency_buckets());
  store_up_ = &prometheus::BuildGauge()
                 .Name("cerebelum_store_available")
                 .Help("1 while the store answers, 0 while it is away")
                 .Register(r)
                 .Add({});
  store_up_->Set(1);
  followers_ = &prometheus::BuildGauge()
                  .Name("cerebelum_event_followers")
                  .Help("Clients following executions' events live")
                  .Register(r)
                  .Add({});
  queue_ready_ = &prometheus::BuildGauge()
                    .Name("cerebelum_task_queue_ready")
                    .Help("Tasks ready to be leased, by queue")
                    .Register(r);
  queue_leased_ = &prometheus::BuildGauge()
                     .Name("cerebelum_task_queue_leased")
                     .Help("Tasks leased to a worker, by queue")
                     .Register(r);
  queue_workers_ = &prometheus::BuildGauge()
                      .Name("cerebelum_task_queue_workers")
                      .Help("Workers registered for a queue")
                      .Register(r);
  lease_expiries_ = &prometheus::BuildCounter()
                       .Name("cerebelum_task_lease_expiries_total")
                       .Help("Task leases that expired (the worker went "
                             "silent), by queue")
                       .Register(r);
  requests_ = &prometheus::BuildCounter()
                 .Name("cerebelum_api_requests_total")
                 .Help("API requests answered, by api (http, grpc), route "
                       "and code")
                 .Register(r);
  request_seconds_
    = &prometheus::BuildHistogram()
         .Name("cerebelum_api_request_seconds")
         .Help("From an API request's arrival to its answer, by api and route")
         .Register(r);
}

node_metrics::~node_metrics() = default;

std::string node_metrics::text() const {
  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, registry_->Collect());
  return out.str();
}

void node_metrics::execution_started(const std::string& workflow) {
  started_->Add({{"workflow", workflow}}).Increment();
}

void node_metrics::execution_finished(const std::string& workflow,
                                      std::string_view status, double seconds) {
  finished_->Add({{"workflow", workflow}, {"status", std::string{status}}})
    .Increment();
  execution_seconds_->Add({{"workflow", workflow}}, execution_buckets())
    .Observe(seconds);
}

void node_metrics::step_finished(std::string_view kind,
                                 std::string_view outcome, double seconds) {
  step_seconds_
    ->Add({{"kind", std::string{kind}}, {"outcome", std::string{outcome}}},
          latency_buckets())
    .Observe(seconds);
}

void node_metrics::commit(std::size_t group_size, double seconds) {
  commit_seconds_->Observe(seconds);
  commit_group_->Observe(static_cast<double>(group_size));
}

void node_metrics::timer_fired(double lateness_seconds) {
  timer_lateness_->Observe(lateness_seconds);
}

void node_metrics::store_available(bool available) {
  store_up_->Set(available ? 1 : 0);
}

void node_metrics::event_followers(std::size_t n) {
  followers_->Set(static_cast<double>(n));
}

void node_metrics::task_queue(const std::string& queue, std::uint64_t ready,
                              std::uint64_t leased, std::uint64_t workers,
                              std::uint64_t lease_expiries) {
  std::lock_guard<std::mutex> guard{queues_mu_};
  auto& s = queues_[queue];
  if (!s.ready) {
    prometheus::Labels labels{{"queue", queue}};
    s.ready = &queue_ready_->Add(labels);
    s.leased = &queue_leased_->Add(labels);
    s.workers = &queue_workers_->Add(labels);
    s.expiries = &lease_expiries_->Add(labels);
  }
  s.ready->Set(static_cast<double>(ready));
  s.leased->Set(static_cast<double>(leased));
  s.workers->Set(static_cast<double>(workers));
  if (lease_expiries > s.expiries_seen) {
    s.expiries->Increment(
      static_cast<double>(lease_expiries - s.expiries_seen));
    s.expiries_seen = lease_expiries;
  }
}

void node_metrics::request(std::string_view api, const std::string& route,
                           const std::string& code, double seconds) {
  std::string a{api};
  requests_->Add({{"api", a}, {"route", route}, {"code", code}}).Increment();
  request_seconds_->Add({{"api", a}, {"route", route}}, latency_buckets())
    .Observe(seconds);
}

} // namespace cerebelum::actors
