// The worker actor of a C++ worker process.
//
// ```
//            register ok
//  joining ---------------> serving ---- stop() ----> draining
//     |                       |  ^                       | drain acked, no task
//     | refused / no node     |  | task / done / beat    | running, results
//     v                       v  |                       v acked
//   (run throws)     gateway down: (run throws)     unregister, (run returns)
// ```
//
// Handlers run on `handler_pool` threads; each reports its outcome to the
// actor with a `(done_atom, CompleteTaskRequest)` message, and the actor (never
// a pool thread) talks to the gateway. Heartbeats are timers of the actor, so
// a handler that computes for minutes still keeps its lease.

#include "sdk/cpp/caf_worker.hpp"
#include "sdk/cpp/tls_check.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/send.hpp>
#include <caf/skip.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace cerebelum::worker {

namespace {

using done_atom = caf::atom_constant<caf::atom("cw_fin")>;
using beat_atom = caf::atom_constant<caf::atom("cw_beat")>;
using stop_atom = caf::atom_constant<caf::atom("cw_stop")>;

constexpr auto request_timeout = std::chrono::seconds{30};

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

/// Fixed threads running handlers; the destructor finishes queued work and
/// joins.
class handler_pool {
 public:
  explicit handler_pool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      threads_.emplace_back([this] {
        loop();
      });
  }

  ~handler_pool() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      closed_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock{mtx_};
        cv_.wait(lock, [this] {
          return closed_ || !jobs_.empty();
        });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool closed_ = false;
  std::vector<std::thread> threads_;
};

using handler_map = std::map<std::string, task_handler>;

} // namespace

// -- task_error / task_context ----------------------------------------------

task_error::task_error(std::string kind, const std::string& message,
                       bool retryable)
  : std::runtime_error(message), kind_(std::move(kind)), retryable_(retryable) {
  // nop
}

struct task_context::shared_state {
  Task task;
  caf::actor worker;
  std::atomic<bool> cancelled{false};
};

task_context::task_context(std::shared_ptr<shared_state> st)
  : st_(std::move(st)) {
  // nop
}

const Task& task_context::task() const {
  return st_->task;
}

void task_context::heartbeat(const json& details) {
  caf::anon_send(st_->worker, beat_atom::value, st_->task.attempt_token(),
                 details.dump());
}

namespace {

/// The value of `key` in the task's resume_json, if the wait is over.
std::optional<json> resumed(const Task& t, const std::string& key) {
  if (t.resume_json().empty()) return std::nullopt;
  auto waits = json::parse(t.resume_json(), nullptr, false);
  if (!waits.is_object() || !waits.contains(key)) return std::nullopt;
  return waits[key];
}

void check_wait_key(const std::string& key) {
  if (key.empty())
    throw task_error{"invalid_wait_key", "a wait needs a non-empty key", false};
}

} // namespace

void task_context::sleep(std::chrono::milliseconds duration,
                         const std::string& wait_key) {
  check_wait_key(wait_key);
  if (resumed(task(), wait_key)) return;
  if (duration.count() <= 0) return;
  suspend_request req;
  req.wait_key = wait_key;
  req.sleep_ms = duration.count();
  throw req;
}

json task_context::wait_for_approval(const json& data,
                                     const std::string& wait_key,
                                     std::chrono::milliseconds timeout) {
  check_wait_key(wait_key);
  if (auto value = resumed(task(), wait_key)) return *value;
  suspend_request req;
  req.wait_key = wait_key;
  req.approval = true;
  req.approval_data_json = data.dump();
  req.approval_timeout_ms = timeout.count();
  throw req;
}

bool task_context::cancel_requested() const {
  return st_->cancelled.load();
}

// -- the worker actor ---------------------------------------------------------

namespace {

using finish_function = std::function<void(std::string error)>;

struct running_task {
  std::shared_ptr<task_context::shared_state> shared;
  std::chrono::milliseconds beat_every{1000};
};

struct worker_state {
  worker_options opts;
  std::shared_ptr<const handler_map> handlers;
  /// Owned by `run`, which outlives the actor.
  handler_pool* pool = nullptr;
  caf::actor gateway;
  finish_function finish;
  std::atomic<std::uint64_t>* completed = nullptr;
  std::int64_t lease_timeout_ms = 0;
  std::unordered_map<std::string, running_task> running;
  /// Outcomes sent, not yet acknowledged.
  std::size_t pending_completes = 0;
  bool registered = false;
  bool stopping = false;
  bool drained = false;
  bool unregistering = false;
  static inline const char* name = "caf_worker";
};

using worker_actor = caf::stateful_actor<worker_state>;

/// Ends `run`: with an error text, or empty for a graceful stop.
void finish(worker_actor* self, std::string error) {
  auto& st = self->state;
  for (auto& [token, task] : st.running)
    task.shared->cancelled = true;
  if (st.finish) {
    auto f = std::move(st.finish);
    st.finish = nullptr;
    f(std::move(error));
  }
  self->quit();
}

/// The heartbeat period of `t`.
std::chrono::milliseconds beat_period(const worker_state& st, const Task& t) {
  using std::chrono::milliseconds;
  if (st.opts.heartbeat_interval.count() > 0) return st.opts.heartbeat_interval;
  std::int64_t basis = t.heartbeat_timeout_ms();
  if (basis <= 0) basis = t.lease_expires_at_ms() - now_ms();
  if (basis <= 0) basis = st.lease_timeout_ms;
  return milliseconds{std::max<std::int64_t>(basis / 3, 50)};
}

void maybe_unregister(worker_actor* self) {
  auto& st = self->state;
  if (!st.stopping || !st.drained || st.unregistering || !st.running.empty()
      || st.pending_completes > 0)
    return;
  st.unregistering = true;
  UnregisterRequest req;
  req.set_worker_id(st.opts.worker_id);
  self->request(st.gateway, request_timeout, std::move(req))
    .then(
      [=](const UnregisterResponse& res) {
        spdlog::info("worker {} unregistered ({} leased tasks handed back)",
                     self->state.opts.worker_id, res.requeued());
        finish(self, {});
      },
      [=](caf::error& err) {
        spdlog::warn("worker {}: unregister failed: {}",
                     self->state.opts.worker_id,
                     wire::render_error(self->system(), err));
        finish(self, {});
      });
}

void send_beat(worker_actor* self, const std::string& token,
               std::string details) {
  auto& st = self->state;
  HeartbeatRequest msg;
  msg.set_worker_id(st.opts.worker_id);
  msg.set_attempt_token(token);
  msg.set_details_json(std::move(details));
  self->request(st.gateway, request_timeout, std::move(msg))
    .then(
      [=](const HeartbeatResponse& ack) {
        auto i = self->state.running.find(token);
        if (i != self->state.running.end() && ack.cancel_requested()
            && !i->second.shared->cancelled.exchange(true))
          spdlog::info("worker {}: the node asked to stop attempt {}",
                       self->state.opts.worker_id, token);
      },
      [=](caf::error& err) {
        auto i = self->state.running.find(token);
        if (i == self->state.running.end()) return;
        if (wire::error_code(err) == wire::errc::stale_attempt
            || wire::error_code(err) == wire::errc::unknown_worker) {
          // The lease is gone: whatever the handler returns is rejected.
          i->second.shared->cancelled = true;
          spdlog::warn("worker {}: lost the lease of attempt {}: {}",
                       self->state.opts.worker_id, token,
                       wire::render_error(self->system(), err));
        } else {
          spdlog::warn("worker {}: heartbeat of {} failed: {}",
                       self->state.opts.worker_id, token,
                       wire::render_error(self->system(), err));
        }
      });
}

void send_complete(worker_actor* self, CompleteTaskRequest msg) {
  auto& st = self->state;
  ++st.pending_completes;
  auto token = msg.attempt_token();
  self->request(st.gateway, request_timeout, std::move(msg))
    .then(
      [=](const CompleteTaskResponse& ack) {
        --self->state.pending_completes;
        ++*self->state.completed;
        spdlog::debug("worker {}: outcome of {} {}", self->state.opts.worker_id,
                      token, ack.recorded() ? "recorded" : "already recorded");
        maybe_unregister(self);
      },
      [=](caf::error& err) {
        --self->state.pending_completes;
        spdlog::warn("worker {}: the node rejected the outcome of {}: {}",
                     self->state.opts.worker_id, token,
                     wire::render_error(self->system(), err));
        maybe_unregister(self);
      });
}

/// An outcome of the attempt `token`, without its outcome set yet.
CompleteTaskRequest outcome_of(const std::string& worker_id,
                               const std::string& token) {
  CompleteTaskRequest msg;
  msg.set_worker_id(worker_id);
  msg.set_attempt_token(token);
  return msg;
}

CompleteTaskRequest failure(const std::string& worker_id,
                            const std::string& token, std::string kind,
                            std::string message, bool retryable) {
  auto msg = outcome_of(worker_id, token);
  auto* err = msg.mutable_error();
  err->set_kind(std::move(kind));
  err->set_message(std::move(message));
  err->set_retryable(retryable);
  return msg;
}

/// Runs on a pool thread: the handler, its exceptions mapped to failures.
CompleteTaskRequest
run_handler(const task_handler& handler,
            const std::shared_ptr<task_context::shared_state>& sh,
            const std::string& worker_id) {
  const auto& t = sh->task;
  json input;
  if (!t.input_json().empty()) {
    input = json::parse(t.input_json(), nullptr, false);
    if (input.is_discarded())
      return failure(worker_id, t.attempt_token(), "invalid_input",
                     "the task's input is not valid JSON", false);
  }
  try {
    task_context ctx{sh};
    auto result = handler(input, ctx);
    auto msg = outcome_of(worker_id, t.attempt_token());
    msg.set_result_json(result.dump());
    return msg;
  } catch (const suspend_request& req) {
    auto msg = outcome_of(worker_id, t.attempt_token());
    auto* s = msg.mutable_suspend();
    s->set_wait_key(req.wait_key);
    s->set_sleep_ms(req.sleep_ms);
    s->set_approval(req.approval);
    s->set_approval_data_json(req.approval_data_json);
    s->set_approval_timeout_ms(req.approval_timeout_ms);
    return msg;
  } catch (const task_error& e) {
    return failure(worker_id, t.attempt_token(), e.kind(), e.what(),
                   e.retryable());
  } catch (const std::exception& e) {
    return failure(worker_id, t.attempt_token(), "handler_exception", e.what(),
                   true);
  } catch (...) {
    return failure(worker_id, t.attempt_token(), "handler_exception",
                   "unknown exception", true);
  }
}

void on_task(worker_actor* self, Task t) {
  auto& st = self->state;
  auto token = t.attempt_token();
  if (st.running.count(token) > 0) return; // pushed twice: runs once
  auto h = st.handlers->find(t.task_type());
  if (h == st.handlers->end()) {
    spdlog::warn("worker {}: no handler for task type '{}' (step {} of {})",
                 st.opts.worker_id, t.task_type(), t.step(), t.execution_id());
    send_complete(self, failure(st.opts.worker_id, token, "unknown_task_type",
                                "worker " + st.opts.worker_id
                                  + " has no handler for task type '"
                                  + t.task_type() + "'",
                                false));
    return;
  }
  spdlog::info("worker {}: running {} (step {} of {}, attempt {})",
               st.opts.worker_id, t.task_type(), t.step(), t.execution_id(),
               t.attempt());
  auto shared = std::make_shared<task_context::shared_state>();
  shared->task = std::move(t);
  shared->worker = caf::actor_cast<caf::actor>(self);
  auto period = beat_period(st, shared->task);
  st.running.emplace(token, running_task{shared, period});
  self->delayed_send(self, period, beat_atom::value, token);
  st.pool->submit([handler = h->second, shared, id = st.opts.worker_id] {
    auto msg = run_handler(handler, shared, id);
    caf::anon_send(shared->worker, done_atom::value, std::move(msg));
  });
}

caf::behavior serving(worker_actor* self);

caf::behavior joining(worker_actor* self) {
  auto& st = self->state;
  // The gateway takes this actor, the request's sender, as the worker.
  RegisterRequest reg;
  reg.set_worker_id(st.opts.worker_id);
  for (auto& q : st.opts.queues)
    reg.add_queues(q);
  reg.set_max_in_flight(st.opts.max_in_flight);
  reg.set_token(st.opts.token);
  for (auto& w : st.opts.workflows)
    *reg.add_workflows() = w;
  self->request(st.gateway, request_timeout, std::move(reg))
    .then(
      [=](const RegisterResponse& ok) {
        auto& st = self->state;
        st.registered = true;
        st.lease_timeout_ms = ok.lease_timeout_ms();
        std::string names;
        for (auto& n : ok.workflows())
          names += (names.empty() ? "" : ", ") + n;
        spdlog::info("worker {} registered (queues: {}; workflows: {}; max in "
                     "flight {})",
                     st.opts.worker_id, fmt::join(st.opts.queues, ", "),
                     names.empty() ? "none" : names, st.opts.max_in_flight);
        self->become(serving(self));
        if (st.stopping) {
          st.stopping = false;
          caf::anon_send(self, stop_atom::value);
        }
      },
      [=](caf::error& err) {
        finish(self, "the node refused the registration of worker "
                       + self->state.opts.worker_id + ": "
                       + wire::render_error(self->system(), err));
      });
  return {
    [=](stop_atom) {
      // Handled once registered (the node may already push tasks).
      self->state.stopping = true;
    },
    [=](Task&) -> caf::skip_t {
      // The gateway pushes only after its reply; kept for `serving` anyway.
      return caf::skip;
    },
  };
}

/// The node ended this worker's session (e.g. its token was revoked): the
/// running attempts can no longer be reported.
void session_ended(worker_actor* self, const caf::error& err) {
  finish(self, wire::render_error(self->system(), err));
}

caf::behavior serving(worker_actor* self) {
  return {
    [=](Task& t) {
      on_task(self, std::move(t));
    },

    [=](done_atom, CompleteTaskRequest& msg) {
      auto& st = self->state;
      auto i = st.running.find(msg.attempt_token());
      if (i == st.running.end()) return;
      bool cancelled = i->second.shared->cancelled.load();
      // The attempt token is a secret: logs name the step instead.
      auto step = i->second.shared->task.step();
      auto execution = i->second.shared->task.execution_id();
      auto attempt = i->second.shared->task.attempt();
      st.running.erase(i);
      if (cancelled)
        spdlog::info("worker {}: attempt {} of step {} ({}) finished after "
                     "its cancellation; reporting it anyway (the node "
                     "decides)",
                     st.opts.worker_id, attempt, step, execution);
      if (auto size = msg.ByteSizeLong(); size > wire::max_message_bytes) {
        // CAF 0.17 would send it cut short, without an error: fail the
        // attempt instead (a retry would produce the same outcome).
        msg = failure(st.opts.worker_id, msg.attempt_token(),
                      "outcome_too_large",
                      "the outcome is " + std::to_string(size)
                        + " bytes; the CAF port takes at most "
                        + std::to_string(wire::max_message_bytes),
                      false);
      }
      send_complete(self, std::move(msg));
    },
    [=](beat_atom, const std::string& token) {
      auto& st = self->state;
      auto i = st.running.find(token);
      if (i == st.running.end()) return;
      send_beat(self, token, {});
      self->delayed_send(self, i->second.beat_every, beat_atom::value, token);
    },
    [=](beat_atom, const std::string& token, std::string& details) {
      if (self->state.running.count(token) > 0)
        send_beat(self, token, std::move(details));
    },
    [=](stop_atom) {
      auto& st = self->state;
      if (st.stopping) return;
      st.stopping = true;
      spdlog::info("worker {} stopping: {} tasks running", st.opts.worker_id,
                   st.running.size());
      // Tasks pushed before the gateway handled the drain arrive before its
      // reply (messages between two actors keep their order).
      DrainRequest req;
      req.set_worker_id(st.opts.worker_id);
      self->request(st.gateway, request_timeout, std::move(req))
        .then(
          [=](const DrainResponse&) {
            self->state.drained = true;
            maybe_unregister(self);
          },
          [=](caf::error& err) {
            spdlog::warn("worker {}: drain failed: {}",
                         self->state.opts.worker_id,
                         wire::render_error(self->system(), err));
            self->state.drained = true;
            maybe_unregister(self);
          });
    },
  };
}

caf::behavior worker_fun(worker_actor* self, worker_options opts,
                         std::shared_ptr<const handler_map> handlers,
                         handler_pool* pool, caf::actor gateway,
                         finish_function on_finish,
                         std::atomic<std::uint64_t>* completed) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.handlers = std::move(handlers);
  st.pool = pool;
  st.gateway = gateway;
  st.finish = std::move(on_finish);
  st.completed = completed;
  self->monitor(gateway);
  // An error message is the node ending the session (e.g. a revoked
  // token); CAF hands it to this handler, whose default would end the
  // actor without telling `run`.
  self->set_error_handler([=](caf::error& err) {
    session_ended(self, err);
  });
  self->set_down_handler([=](caf::down_msg& msg) {
    if (msg.source != self->state.gateway.address()) return;
    finish(self, "lost the connection to the node: "
                   + self->system().render(msg.reason));
  });
  return joining(self);
}

} // namespace

// -- caf_worker ---------------------------------------------------------------

struct caf_worker::impl {
  worker_options opts;
  handler_map handlers;
  std::atomic<bool> stop_requested{false};
  std::atomic<std::uint64_t> completed{0};
  std::mutex mtx;
  caf::actor actor;
};

caf_worker::caf_worker(std::string host, std::uint16_t port,
                       std::string worker_id, std::vector<std::string> queues)
  : impl_(std::make_unique<impl>()) {
  impl_->opts.host = std::move(host);
  impl_->opts.port = port;
  impl_->opts.worker_id = std::move(worker_id);
  impl_->opts.queues = std::move(queues);
}

caf_worker::caf_worker(worker_options opts) : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(opts);
}

caf_worker::~caf_worker() = default;

caf_worker& caf_worker::on(std::string task_type, task_handler handler) {
  if (task_type.empty())
    throw std::invalid_argument("caf_worker::on: empty task type");
  if (!handler)
    throw std::invalid_argument("caf_worker::on: empty handler for '"
                                + task_type + "'");
  impl_->handlers[std::move(task_type)] = std::move(handler);
  return *this;
}

caf_worker& caf_worker::max_in_flight(std::uint32_t n) {
  impl_->opts.max_in_flight = std::max<std::uint32_t>(n, 1);
  return *this;
}

caf_worker& caf_worker::add_workflow(std::string name, std::string format,
                                     std::string text) {
  WorkflowSource src;
  src.set_name(std::move(name));
  src.set_format(std::move(format));
  src.set_text(std::move(text));
  impl_->opts.workflows.push_back(std::move(src));
  return *this;
}

caf_worker& caf_worker::add_workflow_file(const std::filesystem::path& file) {
  auto ext = file.extension().string();
  std::string format;
  if (ext == ".yaml" || ext == ".yml")
    format = "yaml";
  else if (ext == ".json")
    format = "json";
  else
    throw std::runtime_error("workflow file " + file.string()
                             + ": expected a .yaml, .yml or .json file");
  std::ifstream in{file};
  if (!in)
    throw std::runtime_error("cannot read workflow file " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  return add_workflow(file.filename().string(), format, text.str());
}

std::uint64_t caf_worker::completed() const {
  return impl_->completed.load();
}

void caf_worker::stop() {
  impl_->stop_requested = true;
  std::lock_guard<std::mutex> guard{impl_->mtx};
  if (impl_->actor) caf::anon_send(impl_->actor, stop_atom::value);
}

void caf_worker::run() {
  auto& opts = impl_->opts;
  if (opts.worker_id.empty())
    throw std::invalid_argument("caf_worker: empty worker id");
  if (opts.queues.empty())
    throw std::invalid_argument("caf_worker " + opts.worker_id
                                + ": no queue to serve");
  for (auto& q : opts.queues)
    if (q.empty())
      throw std::invalid_argument("caf_worker " + opts.worker_id
                                  + ": empty queue name");
  if (opts.port == 0)
    throw std::invalid_argument("caf_worker " + opts.worker_id
                                + ": no node port");
  opts.max_in_flight = std::max<std::uint32_t>(opts.max_in_flight, 1);
  bool tls = !opts.tls_ca.empty();
  if (!tls && !(opts.tls_cert.empty() && opts.tls_key.empty()))
    throw std::invalid_argument("caf_worker " + opts.worker_id
                                + ": tls_cert and tls_key need tls_ca");
  if (tls && (opts.tls_cert.empty() || opts.tls_key.empty()))
    // libcaf_openssl verifies the node only when it has a certificate of
    // its own to present.
    throw std::invalid_argument(
      "caf_worker " + opts.worker_id
      + ": TLS on the CAF port needs a client certificate and key (tls_cert, "
        "tls_key) besides tls_ca");
  if (impl_->stop_requested) return;
  if (tls)
    check_node_tls({opts.host, opts.port, opts.tls_server_name, opts.tls_ca,
                    opts.tls_cert, opts.tls_key, opts.connect_timeout});
  caf::actor_system_config cfg;
  // Idle CAF threads block until there is work (work sharing), as in the
  // node. The default work-stealing scheduler polls its queues and sleeps
  // in steps of up to 10 ms, so a message that arrives while its threads
  // sleep waits for the next poll, and an idle worker keeps a core busy.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  wire::add_wire_types(cfg);
  cfg.load<caf::io::middleman>();
  if (tls) {
    cfg.openssl_cafile = opts.tls_ca;
    cfg.openssl_certificate = opts.tls_cert;
    cfg.openssl_key = opts.tls_key;
    cfg.load<caf::openssl::manager>();
  }
  caf::actor_system sys{cfg};
  auto deadline = std::chrono::steady_clock::now() + opts.connect_timeout;
  caf::expected<caf::actor> gateway = caf::actor{};
  for (;;) {
    gateway = tls ? caf::openssl::remote_actor(sys, opts.host, opts.port)
                  : sys.middleman().remote_actor(opts.host, opts.port);
    if (gateway || impl_->stop_requested
        || std::chrono::steady_clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  if (!gateway)
    throw std::runtime_error("cannot reach the node at " + opts.host + ":"
                             + std::to_string(opts.port) + ": "
                             + sys.render(gateway.error()));
  if (impl_->stop_requested) return;
  auto pool = std::make_unique<handler_pool>(opts.max_in_flight);
  auto handlers = std::make_shared<const handler_map>(impl_->handlers);
  auto result = std::make_shared<std::promise<std::string>>();
  auto done = result->get_future();
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->actor = sys.spawn(
      worker_fun, opts, handlers, pool.get(), *gateway,
      [result](std::string err) {
        result->set_value(std::move(err));
      },
      &impl_->completed);
    if (impl_->stop_requested) caf::anon_send(impl_->actor, stop_atom::value);
  }
  auto error = done.get();
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->actor = nullptr;
  }
  // Joins the handler threads (after a lost connection their tasks were
  // marked cancelled).
  pool.reset();
  if (!error.empty()) throw std::runtime_error(error);
}

} // namespace cerebelum::worker
