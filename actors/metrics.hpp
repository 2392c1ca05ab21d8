#pragma once

// The node's Prometheus metrics (prometheus-cpp core; served as text by the
// HTTP API at GET /metrics, see docs/api.md "Metrics"). One instance per
// engine_context; every method is thread-safe and cheap (atomics and one
// mutex-guarded lookup per labelled series).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
} // namespace prometheus

namespace cerebelum::actors {

/// Measures a duration for a metric in real time (not the engine's clock:
/// a native step's run time is real whatever the clock says).
class stopwatch {
 public:
  stopwatch();
  /// Seconds since construction.
  [[nodiscard]] double seconds() const;

 private:
  std::int64_t began_ns_;
};

class node_metrics {
 public:
  node_metrics();
  ~node_metrics();
  node_metrics(const node_metrics&) = delete;
  node_metrics& operator=(const node_metrics&) = delete;

  /// Every family in the Prometheus text exposition format (version 0.0.4).
  [[nodiscard]] std::string text() const;

  // -- executions -------------------------------------------------------------

  /// An execution of `workflow` was started (its execution_started
  /// committed).
  void execution_started(const std::string& workflow);
  /// An execution of `workflow` ended `status` (completed, failed,
  /// cancelled) after `seconds` since it started.
  void execution_finished(const std::string& workflow, std::string_view status,
                          double seconds);
  /// A step attempt ended: `kind` native (the function's run time) or task
  /// (from when the task could run to the worker's outcome), `outcome`
  /// completed or failed.
  void step_finished(std::string_view kind, std::string_view outcome,
                     double seconds);

  // -- store and timers
  // ----------------------------------------------------------

  /// The group writer committed `group_size` appends in one transaction
  /// that took `seconds`.
  void commit(std::size_t group_size, double seconds);
  /// A durable timer fired `seconds` after its moment.
  void timer_fired(double lateness_seconds);
  /// Whether the store answers (1) or is away (0).
  void store_available(bool available);
  /// Clients following executions' events live (GET .../events?follow).
  void event_followers(std::size_t n);

  // -- tasks
  // ---------------------------------------------------------------------

  /// The state of task queue `queue`: tasks ready to be leased, leased,
  /// workers registered for it, and the lease expiries counted so far.
  void task_queue(const std::string& queue, std::uint64_t ready,
                  std::uint64_t leased, std::uint64_t workers,
                  std::uint64_t lease_expiries);

  // -- front ends
  // ----------------------------------------------------------------

  /// An API request (`api`: http or grpc) to `route` (a route pattern or a
  /// gRPC method) answered `code` after `seconds`.
  void request(std::string_view api, const std::string& route,
               const std::string& code, double seconds);

 private:
  struct queue_series {
    prometheus::Gauge* ready = nullptr;
    prometheus::Gauge* leased = nullptr;
    prometheus::Gauge* workers = nullptr;
    prometheus::Counter* expiries = nullptr;
    std::uint64_t expiries_seen = 0;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* started_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Family<prometheus::Histogram>* execution_seconds_;
  prometheus::Family<prometheus::Histogram>* step_seconds_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Histogram* commit_group_;
  prometheus::Histogram* timer_lateness_;
  prometheus::Gauge* store_up_;
  prometheus::Gauge* followers_;
  prometheus::Family<prometheus::Gauge>* queue_ready_;
  prometheus::Family<prometheus::Gauge>* queue_leased_;
  prometheus::Family<prometheus::Gauge>* queue_workers_;
  prometheus::Family<prometheus::Counter>* lease_expiries_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_seconds_;
  std::mutex queues_mu_;
  std::map<std::string, queue_series> queues_;
};

} // namespace cerebelum::actors
