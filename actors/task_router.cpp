// The task router (see task_router.hpp and docs/worker-protocol.md).
//
// ```
//   execution --(tasks, id, {upserts, deletes})--> router   (after commit)
//   execution --(refused, id, token)-------------> router   (stale outcome)
//   task_api  --(taskreq, request)---------------> router
//   router    --(outcome, id, token, event)------> engine --> execution
// ```
//
// Everything is in memory: a task is `ready` (in its queue's ready set),
// `leased` (to one worker, with an expiry), `completing` (the worker's
// outcome went to the execution; the worker's call waits for the commit) or
// `failing` (the router failed the attempt: lease expiry or worker lost).
// A task leaves the router when a commit deletes its row.

#include "actors/task_router.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "actors/dead_letters.hpp"
#include "actors/messages.hpp"
#include "eventstore/codec.hpp"
#include "workflow/loader.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::actors {

// -- requests of the facade ---------------------------------------------------

namespace {

struct register_req {
  worker_registration reg;
  task_api::callback<registration_info> done;
};
struct poll_req {
  std::uint64_t id = 0;
  std::string worker;
  std::vector<std::string> queues;
  std::chrono::milliseconds wait{0};
  task_api::callback<std::optional<leased_task>> done;
};
struct release_req {
  std::string worker;
  std::string token;
};
struct heartbeat_req {
  std::string worker;
  std::string token;
  std::string details;
  task_api::callback<heartbeat_info> done;
};
struct complete_req {
  std::string worker;
  std::string token;
  task_outcome outcome;
  task_api::callback<complete_info> done;
};
struct unregister_req {
  std::string worker;
  std::string reason; ///< empty: unregister; else worker lost
  task_api::callback<std::uint32_t> done;
};
struct dlq_list_req {
  std::string queue;
  std::size_t page_size = 0;
  std::string page_token;
  task_api::callback<dead_letter_list> done;
};
struct dlq_retry_req {
  std::int64_t id = 0;
  std::string by;
  task_api::callback<std::string> done;
};

} // namespace

struct router_request {
  std::variant<register_req, poll_req, release_req, heartbeat_req, complete_req,
               unregister_req, dlq_list_req, dlq_retry_req>
    body;
};

using router_request_ptr = std::shared_ptr<router_request>;

} // namespace cerebelum::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::router_request_ptr)

namespace cerebelum::actors {

namespace {

using taskreq_atom = caf::atom_constant<caf::atom("taskreq")>;
using pollcan_atom = caf::atom_constant<caf::atom("pollcan")>;
using checked_atom = caf::atom_constant<caf::atom("checked")>;

std::atomic<std::uint64_t> next_poll_id{1};

/// Task rows read per page at boot.
constexpr std::size_t recovery_page = 5'000;
/// Tokens remembered after they left the router (retried calls, late
/// heartbeats); older entries are dropped.
constexpr std::size_t memory_limit = 100'000;

enum class task_phase { ready, leased, completing, failing };

struct task_entry {
  eventstore::task_row row; // execution_id filled
  std::string workflow;
  std::string target;
  std::string input_json;
  std::string resume_json = "{}";
  std::int32_t map_index = -1;
  std::int64_t heartbeat_timeout_ms = 0;
  std::int64_t start_to_close_timeout_ms = 0;
  task_phase phase = task_phase::ready;
  std::string owner;
  std::int64_t lease_expires_at_ms = 0;
  std::int64_t last_progress_ms = 0;
  /// Sticky routing: preferred worker until `sticky_until_ms`.
  std::string sticky_worker;
  std::int64_t sticky_until_ms = 0;
  /// The worker call waiting for the commit (phase completing).
  task_api::callback<complete_info> on_commit;
  std::int64_t completing_since_ms = 0;
  /// The router's failure of the attempt (phase failing), re-sent while no
  /// commit or refusal answers it (its execution may be parked).
  std::shared_ptr<const events::Event> failure;
};

struct worker_entry {
  std::set<std::string> queues;
  std::uint32_t max_in_flight = 1;
  std::unordered_set<std::string> leased; // tokens
};

struct queue_entry {
  /// (available_at, token)
  std::set<std::pair<std::int64_t, std::string>> ready;
  std::uint32_t leased = 0;
};

struct poller {
  std::string worker;
  std::vector<std::string> queues;
  std::int64_t deadline_ms = 0;
  task_api::callback<std::optional<leased_task>> done;
};

/// Why a token left the router: what later calls about it are told.
struct gone_entry {
  std::string worker;
  std::string why;
  bool recorded = false;  // the worker's own outcome was committed
  bool cancelled = false; // the execution dropped the task while leased
};

struct router_data {
  context_ptr ctx;
  router_options opts;
  std::unordered_map<std::string, task_entry> tasks; // by internal token
  std::map<std::string, queue_entry> queues;
  std::map<std::string, worker_entry> workers;
  std::map<std::uint64_t, poller> pollers; // FIFO by id
  std::unordered_map<std::string, gone_entry> gone;
  std::deque<std::string> gone_order;
  /// execution id -> the worker that ran its last task (sticky routing).
  std::unordered_map<std::string, std::string> last_worker;
  bool ticking = false;
  std::uint64_t leased_total = 0;
};

using router_actor = caf::stateful_actor<router_data>;

const queue_options& qopts(const router_data& st, const std::string& q) {
  auto i = st.opts.queues.find(q);
  return i == st.opts.queues.end() ? st.opts.defaults : i->second;
}

void remember_gone(router_data& st, const std::string& token,
                   gone_entry entry) {
  if (st.gone.insert_or_assign(token, std::move(entry)).second)
    st.gone_order.push_back(token);
  while (st.gone_order.size() > memory_limit) {
    st.gone.erase(st.gone_order.front());
    st.gone_order.pop_front();
  }
}

/// Fills the fields of `e` from its row's payload.
void parse_payload(task_entry& e) {
  auto doc = workflow::parse_json_text(e.row.payload);
  if (!doc.is_object()) {
    e.input_json = e.row.payload;
    return;
  }
  auto str = [&](const char* key) {
    auto i = doc.find(key);
    return i != doc.end() && i->is_string() ? i->get<std::string>()
                                            : std::string{};
  };
  auto num = [&](const char* key) -> std::int64_t {
    auto i = doc.find(key);
    return i != doc.end() && i->is_number_integer() ? i->get<std::int64_t>()
                                                    : 0;
  };
  e.target = str("target");
  e.workflow = str("workflow");
  if (auto i = doc.find("input"); i != doc.end())
    e.input_json = workflow::json_text(*i);
  else
    e.input_json = "null";
  if (auto i = doc.find("resume"); i != doc.end() && i->is_object())
    e.resume_json = workflow::json_text(*i);
  if (auto i = doc.find("map_index"); i != doc.end() && i->is_number_integer())
    e.map_index = i->get<std::int32_t>();
  e.heartbeat_timeout_ms = num("heartbeat_timeout_ms");
  e.start_to_close_timeout_ms = num("start_to_close_timeout_ms");
}

std::int64_t lease_length(const router_data& st, const task_entry& e) {
  return e.heartbeat_timeout_ms > 0 ? e.heartbeat_timeout_ms
                                    : st.opts.default_lease.count();
}

void arm_tick(router_actor* self) {
  auto& st = self->state;
  if (st.ticking) return;
  st.ticking = true;
  self->delayed_send(self, st.opts.tick, tick_atom::value);
}

/// Adds (or replaces) a task from a committed row.
void add_task(router_actor* self, eventstore::task_row row) {
  auto& st = self->state;
  auto token = row.task_id;
  if (auto old = st.tasks.find(token); old != st.tasks.end()) {
    // A re-published row (the execution resent its commands): keep the
    // lease state, refresh the payload.
    old->second.row = std::move(row);
    parse_payload(old->second);
    return;
  }
  task_entry e;
  e.row = std::move(row);
  parse_payload(e);
  e.row.lease_owner.clear();
  e.row.lease_expires_at_ms.reset();
  const auto& qo = qopts(st, e.row.queue);
  if (qo.sticky_ms > 0) {
    if (auto w = st.last_worker.find(e.row.execution_id);
        w != st.last_worker.end()) {
      e.sticky_worker = w->second;
      e.sticky_until_ms = e.row.available_at_ms + qo.sticky_ms;
    }
  }
  st.queues[e.row.queue].ready.emplace(e.row.available_at_ms, token);
  st.tasks.emplace(token, std::move(e));
}

/// Takes `token` out of its ready set or lease bookkeeping.
void detach(router_data& st, task_entry& e, const std::string& token) {
  auto& q = st.queues[e.row.queue];
  if (e.phase == task_phase::ready) {
    q.ready.erase({e.row.available_at_ms, token});
  } else if (e.phase == task_phase::leased
             || e.phase == task_phase::completing) {
    if (q.leased > 0) --q.leased;
    if (auto w = st.workers.find(e.owner); w != st.workers.end())
      w->second.leased.erase(token);
  }
}

leased_task to_leased(const task_entry& e) {
  leased_task t;
  t.task_id = e.row.task_id;
  t.attempt_token = external_token(e.row.execution_id, e.row.task_id);
  t.execution_id = e.row.execution_id;
  t.workflow = e.workflow;
  t.step = e.row.step;
  t.task_type = e.target;
  t.queue = e.row.queue;
  t.attempt = static_cast<std::uint32_t>(e.row.attempt);
  t.input_json = e.input_json;
  t.idempotency_key = e.row.idempotency_key;
  t.lease_expires_at_ms = e.lease_expires_at_ms;
  t.heartbeat_timeout_ms = e.heartbeat_timeout_ms;
  t.start_to_close_timeout_ms = e.start_to_close_timeout_ms;
  t.resume_json = e.resume_json;
  return t;
}

/// Finds a ready task of `queues` that `worker` may take now; returns its
/// token or empty.
std::string pick(router_data& st, const std::string& worker,
                 const std::vector<std::string>& queues, std::int64_t now) {
  std::string best;
  std::int64_t best_at = 0;
  for (auto& qname : queues) {
    auto qi = st.queues.find(qname);
    if (qi == st.queues.end() || qi->second.ready.empty()) continue;
    auto limit = qopts(st, qname).max_concurrency;
    if (limit > 0 && qi->second.leased >= limit) continue;
    for (auto& [at, token] : qi->second.ready) {
      if (!best.empty() && at >= best_at) break;
      auto& e = st.tasks.at(token);
      bool eligible = e.sticky_worker.empty() || e.sticky_worker == worker
                      || now >= e.sticky_until_ms
                      || st.workers.count(e.sticky_worker) == 0;
      if (!eligible) continue;
      best = token;
      best_at = at;
      break;
    }
  }
  return best;
}

/// Hands ready tasks to waiting pollers, oldest poll first.
void dispatch(router_actor* self) {
  auto& st = self->state;
  if (st.pollers.empty()) return;
  auto now = now_ms();
  for (auto i = st.pollers.begin(); i != st.pollers.end();) {
    auto w = st.workers.find(i->second.worker);
    if (w == st.workers.end()) {
      ++i;
      continue;
    }
    if (w->second.leased.size() >= w->second.max_in_flight) {
      ++i;
      continue;
    }
    auto token = pick(st, i->second.worker, i->second.queues, now);
    if (token.empty()) {
      ++i;
      continue;
    }
    auto& e = st.tasks.at(token);
    auto& q = st.queues[e.row.queue];
    q.ready.erase({e.row.available_at_ms, token});
    ++q.leased;
    e.phase = task_phase::leased;
    e.owner = i->second.worker;
    e.lease_expires_at_ms = now + lease_length(st, e);
    e.last_progress_ms = 0;
    w->second.leased.insert(token);
    ++st.leased_total;
    auto done = std::move(i->second.done);
    i = st.pollers.erase(i);
    done(task_result<std::optional<leased_task>>::ok(to_leased(e)));
  }
  if (!st.pollers.empty()) arm_tick(self);
}

void send_outcome(router_actor* self, const task_entry& e, events::Event ev) {
  auto engine = self->state.ctx->engine();
  if (!engine) return;
  self->send(engine, outcome_atom::value, e.row.execution_id, e.row.task_id,
             std::make_shared<const events::Event>(std::move(ev)));
}

/// The router fails the attempt `token` (lease expired, worker lost).
void fail_attempt(router_actor* self, const std::string& token,
                  const std::string& kind, const std::string& message) {
  auto& st = self->state;
  auto& e = st.tasks.at(token);
  auto worker = e.owner;
  detach(st, e, token);
  e.phase = task_phase::failing;
  e.owner.clear();
  remember_gone(st, token, {worker, message, false, false});
  events::Event ev;
  auto* f = ev.mutable_step_failed();
  f->set_step(e.row.step);
  f->set_attempt(static_cast<std::uint32_t>(e.row.attempt));
  f->set_attempt_token(e.row.task_id);
  f->set_map_index(e.map_index);
  f->set_failed_at_ms(now_ms());
  if (kind == "worker_lost") f->set_worker_id(worker);
  auto* err = f->mutable_error();
  err->set_kind(kind);
  err->set_message(message);
  err->set_retryable(true);
  spdlog::info("task router: attempt {} of {} ({}): {}", e.row.attempt,
               e.row.step, e.row.execution_id, message);
  e.failure = std::make_shared<const events::Event>(ev);
  e.completing_since_ms = now_ms();
  send_outcome(self, e, std::move(ev));
  arm_tick(self);
}

/// Drops `token` from the router (its row was deleted by a commit).
void drop(router_actor* self, const std::string& token) {
  auto& st = self->state;
  auto i = st.tasks.find(token);
  if (i == st.tasks.end()) return;
  auto& e = i->second;
  if (e.phase == task_phase::completing) {
    st.last_worker[e.row.execution_id] = e.owner;
    if (st.last_worker.size() > memory_limit) st.last_worker.clear();
    remember_gone(st, token, {e.owner, "already recorded", true, false});
    auto done = std::move(e.on_commit);
    detach(st, e, token);
    st.tasks.erase(i);
    if (done) done(task_result<complete_info>::ok({true}));
    return;
  }
  if (e.phase == task_phase::leased)
    remember_gone(st, token,
                  {e.owner,
                   "the execution no longer waits for this attempt (step "
                   "timed out, execution cancelled or ended)",
                   false, true});
  detach(st, e, token);
  st.tasks.erase(i);
}

task_error unknown_worker(const std::string& w) {
  return {task_errc::unknown_worker,
          "worker '" + workflow::printable(w)
            + "' is not registered (call Register first)"};
}

/// Validates JSON text; empty text is allowed when `optional`.
std::optional<task_error> check_json(const std::string& text, const char* what,
                                     bool optional) {
  if (text.size() > max_task_json_bytes)
    return task_error{task_errc::oversized,
                      std::string{what} + " is " + std::to_string(text.size())
                        + " bytes, the limit is "
                        + std::to_string(max_task_json_bytes)};
  if (text.empty()) {
    if (optional) return std::nullopt;
    return task_error{task_errc::invalid_json,
                      std::string{what} + " is empty (expected JSON text)"};
  }
  if (auto doc = workflow::parse_json(text, what); !doc)
    return task_error{task_errc::invalid_json, doc.error().message};
  return std::nullopt;
}

/// Checks a text field of a request against the text rule.
std::optional<task_error>
check_field(std::string_view what, const std::string& value,
            std::size_t max_bytes, workflow::text_rule rule) {
  if (auto bad = workflow::check_text(what, value, max_bytes, rule))
    return task_error{task_errc::invalid_argument, std::move(*bad)};
  return std::nullopt;
}

/// The outcome event of `out` for `e` by `worker`; sets `err` when the
/// outcome is malformed.
std::optional<events::Event>
make_outcome(const task_entry& e, const std::string& worker,
             const task_outcome& out, std::optional<task_error>& err) {
  events::Event ev;
  auto now = now_ms();
  if (auto* ok = std::get_if<task_success>(&out)) {
    if ((err = check_json(ok->result_json, "result_json", false)))
      return std::nullopt;
    auto* c = ev.mutable_step_completed();
    c->set_step(e.row.step);
    c->set_attempt(static_cast<std::uint32_t>(e.row.attempt));
    c->set_attempt_token(e.row.task_id);
    c->set_result_json(ok->result_json);
    c->set_completed_at_ms(now);
    c->set_map_index(e.map_index);
    c->set_worker_id(worker);
  } else if (auto* bad = std::get_if<task_failure>(&out)) {
    if ((err = check_json(bad->details_json, "error.details_json", true)))
      return std::nullopt;
    if (bad->message.size() > max_task_json_bytes) {
      err = task_error{task_errc::oversized,
                       "error.message is larger than 1 MiB"};
      return std::nullopt;
    }
    if ((err = check_field("error.kind", bad->kind, workflow::max_name_bytes,
                           workflow::text_rule::name))
        || (err = check_field("error.message", bad->message,
                              max_task_json_bytes, workflow::text_rule::free)))
      return std::nullopt;
    auto* f = ev.mutable_step_failed();
    f->set_step(e.row.step);
    f->set_attempt(static_cast<std::uint32_t>(e.row.attempt));
    f->set_attempt_token(e.row.task_id);
    f->set_failed_at_ms(now);
    f->set_map_index(e.map_index);
    f->set_worker_id(worker);
    auto* info = f->mutable_error();
    info->set_kind(bad->kind.empty() ? "error" : bad->kind);
    info->set_message(bad->message);
    info->set_details_json(bad->details_json);
    info->set_retryable(bad->retryable);
  } else {
    auto& s = std::get<task_suspend>(out);
    if ((err = check_field("suspend.wait_key", s.wait_key,
                           workflow::max_name_bytes,
                           workflow::text_rule::name)))
      return std::nullopt;
    if (s.wait_key.empty()) {
      err = task_error{task_errc::invalid_argument,
                       "suspend.wait_key is empty (name the wait, unique "
                       "within the step, e.g. \"sleep#1\")"};
      return std::nullopt;
    }
    if ((s.sleep_ms > 0) == s.approval) {
      err = task_error{task_errc::invalid_argument,
                       "suspend needs exactly one of sleep_ms > 0 or "
                       "approval = true"};
      return std::nullopt;
    }
    if (s.sleep_ms < 0 || s.approval_timeout_ms < 0) {
      err = task_error{task_errc::invalid_argument,
                       "suspend.sleep_ms and approval_timeout_ms must not be "
                       "negative"};
      return std::nullopt;
    }
    if ((err = check_json(s.approval_data_json, "suspend.approval_data_json",
                          true)))
      return std::nullopt;
    auto* p = ev.mutable_step_suspended();
    p->set_step(e.row.step);
    p->set_attempt(static_cast<std::uint32_t>(e.row.attempt));
    p->set_attempt_token(e.row.task_id);
    p->set_wait_key(s.wait_key);
    p->set_sleep_ms(s.sleep_ms);
    p->set_approval(s.approval);
    p->set_approval_data_json(s.approval_data_json);
    p->set_approval_timeout_ms(s.approval_timeout_ms);
    p->set_suspended_at_ms(now);
    p->set_map_index(e.map_index);
    p->set_worker_id(worker);
  }
  return ev;
}

/// Whether the history of `execution_id` records an outcome of attempt
/// `token` by `worker` (a retried CompleteTask after the router forgot it).
bool recorded_in_history(engine_context& ctx, const std::string& execution_id,
                         const std::string& token, const std::string& worker) {
  bool found = false;
  auto n = eventstore::read_history(
    ctx.store(), execution_id, 0, [&](const events::Event& ev) {
      const std::string* t = nullptr;
      const std::string* w = nullptr;
      if (ev.has_step_completed()) {
        t = &ev.step_completed().attempt_token();
        w = &ev.step_completed().worker_id();
      } else if (ev.has_step_failed()) {
        t = &ev.step_failed().attempt_token();
        w = &ev.step_failed().worker_id();
      } else if (ev.has_step_suspended()) {
        t = &ev.step_suspended().attempt_token();
        w = &ev.step_suspended().worker_id();
      }
      if (t != nullptr && *t == token && *w == worker) found = true;
      return !found;
    });
  return n.ok() && found;
}

void on_complete(router_actor* self, complete_req& req) {
  auto& st = self->state;
  auto done = std::move(req.done);
  std::string exec_id;
  std::string token;
  if (!parse_external_token(req.token, exec_id, token)) {
    done(task_result<complete_info>::fail(
      task_errc::stale_token,
      "unknown attempt token '" + workflow::printable(req.token, 120) + "'"));
    return;
  }
  auto i = st.tasks.find(token);
  if (i != st.tasks.end() && i->second.owner == req.worker
      && i->second.phase == task_phase::leased) {
    auto& e = i->second;
    std::optional<task_error> err;
    auto ev = make_outcome(e, req.worker, req.outcome, err);
    if (!ev) {
      done(task_result<complete_info>{std::nullopt, std::move(err)});
      return;
    }
    e.phase = task_phase::completing;
    e.on_commit = std::move(done);
    e.completing_since_ms = now_ms();
    send_outcome(self, e, std::move(*ev));
    arm_tick(self);
    return;
  }
  if (i != st.tasks.end() && i->second.owner == req.worker
      && i->second.phase == task_phase::completing) {
    done(task_result<complete_info>::fail(
      task_errc::unavailable, "an outcome of this attempt is being recorded; "
                              "retry the call"));
    return;
  }
  if (auto g = st.gone.find(token); g != st.gone.end()) {
    if (g->second.recorded && g->second.worker == req.worker)
      done(task_result<complete_info>::ok({false}));
    else
      done(task_result<complete_info>::fail(
        task_errc::stale_token, "attempt " + workflow::printable(req.token, 120)
                                  + " is not leased to worker '"
                                  + workflow::printable(req.worker)
                                  + "': " + g->second.why));
    return;
  }
  if (i != st.tasks.end()) {
    done(task_result<complete_info>::fail(
      task_errc::stale_token, "attempt " + workflow::printable(req.token, 120)
                                + " is not leased to worker '"
                                + workflow::printable(req.worker) + "'"));
    return;
  }
  // Unknown here (e.g. recorded before a node restart): look in the history
  // off the router's thread.
  auto ctx = st.ctx;
  auto worker = req.worker;
  auto ext = req.token;
  self->spawn<caf::detached>([ctx, exec_id, token, worker, ext, done] {
    if (recorded_in_history(*ctx, exec_id, token, worker))
      done(task_result<complete_info>::ok({false}));
    else
      done(task_result<complete_info>::fail(
        task_errc::stale_token, "attempt " + ext + " is not leased to worker '"
                                  + worker
                                  + "' (unknown, expired or already ended)"));
  });
}

void on_heartbeat(router_actor* self, heartbeat_req& req) {
  auto& st = self->state;
  std::string exec_id;
  std::string token;
  if (!parse_external_token(req.token, exec_id, token)) {
    req.done(task_result<heartbeat_info>::fail(
      task_errc::stale_token,
      "unknown attempt token '" + workflow::printable(req.token, 120) + "'"));
    return;
  }
  if (st.workers.count(req.worker) == 0) {
    req.done(
      task_result<heartbeat_info>{std::nullopt, unknown_worker(req.worker)});
    return;
  }
  if (auto err = check_json(req.details, "details_json", true)) {
    req.done(task_result<heartbeat_info>{std::nullopt, std::move(err)});
    return;
  }
  auto i = st.tasks.find(token);
  if (i == st.tasks.end() || i->second.owner != req.worker
      || (i->second.phase != task_phase::leased
          && i->second.phase != task_phase::completing)) {
    auto g = st.gone.find(token);
    if (g != st.gone.end() && g->second.cancelled
        && g->second.worker == req.worker) {
      req.done(task_result<heartbeat_info>::ok({0, true}));
      return;
    }
    req.done(task_result<heartbeat_info>::fail(
      task_errc::stale_token,
      "attempt " + workflow::printable(req.token, 120)
        + " is not leased to worker '" + workflow::printable(req.worker) + "'"
        + (g != st.gone.end() ? ": " + g->second.why : std::string{})));
    return;
  }
  auto& e = i->second;
  auto now = now_ms();
  e.lease_expires_at_ms = now + lease_length(st, e);
  if (!req.details.empty()
      && now - e.last_progress_ms >= st.opts.progress_interval.count()) {
    e.last_progress_ms = now;
    events::Event ev;
    auto* p = ev.mutable_step_progress();
    p->set_step(e.row.step);
    p->set_attempt_token(e.row.task_id);
    p->set_details_json(req.details);
    p->set_worker_id(req.worker);
    p->set_at_ms(now);
    send_outcome(self, e, std::move(ev));
  }
  req.done(task_result<heartbeat_info>::ok({e.lease_expires_at_ms, false}));
}

/// Fails every attempt leased to `worker` and forgets the worker.
std::uint32_t drop_worker(router_actor* self, const std::string& worker,
                          const std::string& kind, const std::string& why) {
  auto& st = self->state;
  auto w = st.workers.find(worker);
  if (w == st.workers.end()) return 0;
  std::vector<std::string> tokens(w->second.leased.begin(),
                                  w->second.leased.end());
  std::uint32_t n = 0;
  for (auto& t : tokens) {
    auto& e = st.tasks.at(t);
    if (e.phase != task_phase::leased) continue; // an outcome is on its way
    fail_attempt(self, t, kind, why);
    ++n;
  }
  for (auto i = st.pollers.begin(); i != st.pollers.end();) {
    if (i->second.worker == worker) {
      auto done = std::move(i->second.done);
      i = st.pollers.erase(i);
      done(task_result<std::optional<leased_task>>::ok(std::nullopt));
    } else {
      ++i;
    }
  }
  // Tokens in `completing` stay owned by the worker's name until committed.
  if (std::all_of(w->second.leased.begin(), w->second.leased.end(),
                  [&](const std::string& t) {
                    return st.tasks.at(t).phase != task_phase::completing;
                  }))
    st.workers.erase(w);
  else
    w->second.queues.clear();
  return n;
}

void on_register(router_actor* self, register_req& req) {
  auto& st = self->state;
  auto& reg = req.reg;
  using res_t = task_result<registration_info>;
  if (reg.worker_id.empty()) {
    req.done(res_t::fail(task_errc::invalid_argument, "worker_id is empty"));
    return;
  }
  if (auto bad = check_field("worker_id", reg.worker_id,
                             workflow::max_name_bytes,
                             workflow::text_rule::name)) {
    req.done(res_t::fail(bad->code, bad->message));
    return;
  }
  for (auto& q : reg.queues)
    if (auto bad = check_field("queues", q, workflow::max_name_bytes,
                               workflow::text_rule::name)) {
      req.done(res_t::fail(bad->code, bad->message));
      return;
    }
  if (reg.queues.empty()) {
    req.done(res_t::fail(task_errc::invalid_argument,
                         "worker '" + reg.worker_id
                           + "' registers no queue (name at least one)"));
    return;
  }
  for (auto& q : reg.queues)
    if (q.empty()) {
      req.done(res_t::fail(task_errc::invalid_argument,
                           "worker '" + reg.worker_id
                             + "' registers an empty queue name"));
      return;
    }
  // Validate every definition before adding any.
  std::vector<workflow::definition> defs;
  std::map<std::string, std::string> sources; // workflow name -> source name
  for (auto& src : reg.workflows) {
    auto name = src.name.empty() ? std::string{"<worker workflow>"} : src.name;
    workflow::result<workflow::definition> def = workflow::load_yaml("", name);
    if (src.format == "json") {
      def = workflow::load_json_text(src.text, name);
    } else if (src.format == "yaml" || src.format.empty()) {
      def = workflow::load_yaml(src.text, name);
    } else {
      req.done(res_t::fail(task_errc::invalid_workflow,
                           name + ": unknown format '" + src.format
                             + "' (expected \"yaml\" or \"json\")"));
      return;
    }
    if (!def) {
      req.done(
        res_t::fail(task_errc::invalid_workflow, def.error().to_string()));
      return;
    }
    auto [first, fresh] = sources.emplace(def->name, name);
    if (!fresh) {
      req.done(res_t::fail(task_errc::invalid_workflow,
                           "workflow '" + def->name + "' is defined twice: in "
                             + first->second + " and in " + name));
      return;
    }
    defs.push_back(std::move(*def));
  }
  registration_info info;
  info.lease_timeout_ms = st.opts.default_lease.count();
  for (auto& d : defs) {
    info.workflows.push_back(d.name);
    spdlog::info("worker {} registered workflow {} (version {})", reg.worker_id,
                 d.name, d.version_hash);
  }
  // Replaces what this worker held; what no one needs any more is released.
  st.ctx->register_definitions(reg.worker_id, std::move(defs));
  auto& w = st.workers[reg.worker_id];
  w.queues = {reg.queues.begin(), reg.queues.end()};
  w.max_in_flight = std::max<std::uint32_t>(1, reg.max_in_flight);
  for (auto& q : reg.queues)
    st.queues[q];
  spdlog::info("worker {} registered for {} queue(s), max in flight {}",
               reg.worker_id, reg.queues.size(), w.max_in_flight);
  req.done(res_t::ok(std::move(info)));
  dispatch(self);
}

void on_poll(router_actor* self, poll_req& req) {
  auto& st = self->state;
  using res_t = task_result<std::optional<leased_task>>;
  auto w = st.workers.find(req.worker);
  if (w == st.workers.end()) {
    req.done(res_t{std::nullopt, unknown_worker(req.worker)});
    return;
  }
  if (req.queues.empty())
    req.queues.assign(w->second.queues.begin(), w->second.queues.end());
  for (auto& q : req.queues)
    if (w->second.queues.count(q) == 0) {
      req.done(res_t::fail(task_errc::unknown_queue,
                           "queue '" + workflow::printable(q)
                             + "' is not registered by worker '"
                             + workflow::printable(req.worker) + "'"));
      return;
    }
  auto wait = req.wait.count() <= 0 ? st.opts.default_poll_wait : req.wait;
  wait = std::min(wait, st.opts.max_poll_wait);
  poller p{req.worker, std::move(req.queues), now_ms() + wait.count(),
           std::move(req.done)};
  st.pollers.emplace(req.id, std::move(p));
  dispatch(self);
  arm_tick(self);
}

void on_release(router_actor* self, const release_req& req) {
  auto& st = self->state;
  std::string exec_id;
  std::string token;
  if (!parse_external_token(req.token, exec_id, token)) return;
  auto i = st.tasks.find(token);
  if (i == st.tasks.end() || i->second.owner != req.worker
      || i->second.phase != task_phase::leased)
    return;
  auto& e = i->second;
  detach(st, e, token);
  e.phase = task_phase::ready;
  e.owner.clear();
  st.queues[e.row.queue].ready.emplace(e.row.available_at_ms, token);
  dispatch(self);
}

void on_tick(router_actor* self) {
  auto& st = self->state;
  st.ticking = false;
  auto now = now_ms();
  // Poll deadlines.
  for (auto i = st.pollers.begin(); i != st.pollers.end();) {
    if (i->second.deadline_ms <= now) {
      auto done = std::move(i->second.done);
      i = st.pollers.erase(i);
      done(task_result<std::optional<leased_task>>::ok(std::nullopt));
    } else {
      ++i;
    }
  }
  // Leases and commits that take too long.
  std::vector<std::string> expired;
  bool busy = false;
  for (auto& [token, e] : st.tasks) {
    if (e.phase == task_phase::leased) {
      busy = true;
      if (e.lease_expires_at_ms <= now) expired.push_back(token);
    } else if (e.phase == task_phase::completing) {
      busy = true;
      if (now - e.completing_since_ms >= st.opts.commit_timeout.count()) {
        e.phase = task_phase::leased;
        e.lease_expires_at_ms = now + lease_length(st, e);
        auto done = std::move(e.on_commit);
        if (done)
          done(task_result<complete_info>::fail(
            task_errc::unavailable,
            "the outcome was not committed in time; retry the call"));
      }
    } else if (e.phase == task_phase::failing) {
      // Not answered yet (its execution waits for its workflow to be
      // registered again, or the message was lost): send it again.
      busy = true;
      if (e.failure
          && now - e.completing_since_ms >= st.opts.commit_timeout.count()) {
        e.completing_since_ms = now;
        send_outcome(self, e, *e.failure);
      }
    }
  }
  for (auto& t : expired) {
    auto& e = st.tasks.at(t);
    fail_attempt(self, t, "lease_expired",
                 "lease of worker '" + e.owner + "' expired (no heartbeat for "
                   + std::to_string(lease_length(st, e)) + " ms)");
  }
  dispatch(self);
  if (busy || !st.pollers.empty()) arm_tick(self);
}

void recover(router_actor* self) {
  auto& st = self->state;
  if (!st.ctx->has_store()) return;
  std::string token;
  std::size_t n = 0;
  do {
    auto page = st.ctx->store().all_tasks(recovery_page, token);
    if (!page) {
      spdlog::error("task router: cannot read task rows: {}",
                    eventstore::to_string(page.err()));
      throw std::runtime_error("task router: cannot read task rows");
    }
    for (auto& row : page->rows) {
      add_task(self, std::move(row));
      ++n;
    }
    token = page->next_page_token;
  } while (!token.empty());
  spdlog::info("task router: {} open task(s) recovered from the store", n);
}

caf::behavior router_fun(router_actor* self, context_ptr ctx,
                         router_options opts) {
  self->state.ctx = std::move(ctx);
  self->state.opts = std::move(opts);
  recover(self);
  return {
    [=](tasks_atom, const std::string& id, const task_changes_ptr& changes) {
      for (auto& row : changes->upserts) {
        auto copy = row;
        copy.execution_id = id;
        add_task(self, std::move(copy));
      }
      for (auto& token : changes->deletes)
        drop(self, token);
      dispatch(self);
    },
    [=](refused_atom, const std::string&, const std::string& token) {
      auto& st = self->state;
      auto i = st.tasks.find(token);
      if (i == st.tasks.end()) return;
      auto& e = i->second;
      if (e.phase == task_phase::completing) {
        auto done = std::move(e.on_commit);
        remember_gone(st, token,
                      {e.owner,
                       "the execution no longer waits for this attempt", false,
                       false});
        detach(st, e, token);
        st.tasks.erase(i);
        if (done)
          done(task_result<complete_info>::fail(
            task_errc::stale_token,
            "attempt refused: the execution no longer waits for it (lease "
            "expired, step timed out or execution ended)"));
      } else if (e.phase == task_phase::failing) {
        detach(st, e, token);
        st.tasks.erase(i);
      }
      dispatch(self);
    },
    [=](taskreq_atom, const router_request_ptr& req) {
      std::visit(
        [&](auto& r) {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, register_req>)
            on_register(self, r);
          else if constexpr (std::is_same_v<T, poll_req>)
            on_poll(self, r);
          else if constexpr (std::is_same_v<T, release_req>)
            on_release(self, r);
          else if constexpr (std::is_same_v<T, heartbeat_req>)
            on_heartbeat(self, r);
          else if constexpr (std::is_same_v<T, complete_req>)
            on_complete(self, r);
          else if constexpr (std::is_same_v<T, dlq_list_req>)
            self->spawn<caf::detached>(
              [ctx = self->state.ctx, r = std::move(r)] {
                r.done(
                  list_dead_letters(*ctx, r.queue, r.page_size, r.page_token));
              });
          else if constexpr (std::is_same_v<T, dlq_retry_req>)
            self->spawn<caf::detached>(
              [ctx = self->state.ctx, r = std::move(r)] {
                r.done(retry_dead_letter(*ctx, r.id, r.by));
              });
          else {
            std::uint32_t n = 0;
            if (r.reason.empty())
              n = drop_worker(self, r.worker, "worker_lost",
                              "worker '" + r.worker + "' unregistered");
            else
              n = drop_worker(self, r.worker, "worker_lost",
                              "worker '" + r.worker + "' lost: " + r.reason);
            self->state.ctx->unregister_definitions(r.worker);
            if (r.done) r.done(task_result<std::uint32_t>::ok(n));
            dispatch(self);
          }
        },
        req->body);
    },
    [=](pollcan_atom, std::uint64_t id) {
      auto& st = self->state;
      auto i = st.pollers.find(id);
      if (i == st.pollers.end()) return;
      auto done = std::move(i->second.done);
      st.pollers.erase(i);
      done(task_result<std::optional<leased_task>>::ok(std::nullopt));
    },
    [=](tick_atom) {
      on_tick(self);
    },
    [=](stats_atom) {
      auto& st = self->state;
      std::uint64_t ready = 0;
      for (auto& [name, q] : st.queues)
        ready += q.ready.size();
      return std::make_tuple(static_cast<std::uint64_t>(st.tasks.size()), ready,
                             st.leased_total);
    },
  };
}

void post(const caf::actor& router, router_request req) {
  caf::anon_send(router, taskreq_atom::value,
                 std::make_shared<router_request>(std::move(req)));
}

template <class T>
task_api::callback<T>
unavailable_if_gone(const caf::actor& router, task_api::callback<T>& cb) {
  if (!router) {
    cb(task_result<T>::fail(task_errc::unavailable,
                            "the node's task router is not running"));
    return nullptr;
  }
  return std::move(cb);
}

} // namespace

// -- tokens -------------------------------------------------------------------

std::string external_token(const std::string& execution_id,
                           const std::string& token) {
  return std::to_string(execution_id.size()) + ":" + execution_id + ":" + token;
}

bool parse_external_token(const std::string& external,
                          std::string& execution_id, std::string& token) {
  auto colon = external.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 9) return false;
  std::size_t len = 0;
  for (std::size_t i = 0; i < colon; ++i) {
    if (external[i] < '0' || external[i] > '9') return false;
    len = len * 10 + static_cast<std::size_t>(external[i] - '0');
  }
  auto start = colon + 1;
  if (len == 0 || start + len + 1 >= external.size()
      || external[start + len] != ':')
    return false;
  execution_id = external.substr(start, len);
  token = external.substr(start + len + 1);
  return true;
}

// -- facade -------------------------------------------------------------------

const char* to_string(task_errc c) noexcept {
  switch (c) {
    case task_errc::invalid_argument: return "invalid_argument";
    case task_errc::unknown_worker: return "unknown_worker";
    case task_errc::unknown_queue: return "unknown_queue";
    case task_errc::stale_token: return "stale_token";
    case task_errc::invalid_json: return "invalid_json";
    case task_errc::oversized: return "oversized";
    case task_errc::invalid_workflow: return "invalid_workflow";
    case task_errc::unavailable: return "unavailable";
    case task_errc::not_found: return "not_found";
    case task_errc::not_retryable: return "not_retryable";
  }
  return "unknown";
}

void poll_handle::cancel() const {
  if (router_) caf::anon_send(router_, pollcan_atom::value, id_);
}

task_api::task_api(caf::actor router) : router_(std::move(router)) {
  // nop
}

task_api::task_api(std::function<caf::actor()> locate)
  : locate_(std::move(locate)) {
  // nop
}

caf::actor task_api::router() const {
  return locate_ ? locate_() : router_;
}

void task_api::register_worker(worker_registration reg,
                               callback<registration_info> done) const {
  auto target = router();
  if (auto cb = unavailable_if_gone(target, done))
    post(target, {register_req{std::move(reg), std::move(cb)}});
}

poll_handle task_api::poll(std::string worker_id,
                           std::vector<std::string> queues,
                           std::chrono::milliseconds wait,
                           callback<std::optional<leased_task>> done) const {
  auto id = next_poll_id.fetch_add(1);
  auto target = router();
  if (auto cb = unavailable_if_gone(target, done))
    post(target, {poll_req{id, std::move(worker_id), std::move(queues), wait,
                           std::move(cb)}});
  return {target, id};
}

void task_api::release(std::string worker_id, std::string token) const {
  auto target = router();
  if (target)
    post(target, {release_req{std::move(worker_id), std::move(token)}});
}

void task_api::heartbeat(std::string worker_id, std::string token,
                         std::string details_json,
                         callback<heartbeat_info> done) const {
  auto target = router();
  if (auto cb = unavailable_if_gone(target, done))
    post(target, {heartbeat_req{std::move(worker_id), std::move(token),
                                std::move(details_json), std::move(cb)}});
}

void task_api::complete(std::string worker_id, std::string token,
                        task_outcome outcome,
                        callback<complete_info> done) const {
  auto target = router();
  if (auto cb = unavailable_if_gone(target, done))
    post(target, {complete_req{std::move(worker_id), std::move(token),
                               std::move(outcome), std::move(cb)}});
}

void task_api::unregister(std::string worker_id,
                          callback<std::uint32_t> done) const {
  auto target = router();
  if (auto cb = unavailable_if_gone(target, done))
    post(target, {unregister_req{std::move(worker_id), {}, std::move(cb)}});
}

void task_api::worker_lost(std::string worker_id, std::string reason) const {
  auto target = router();
  if (target)
    post(target, {unregister_req{std::move(worker_id),
                                 reason.empty() ? std::string{"disconnected"}
                                                : std::move(reason),
                                 nullptr}});
}

void task_api::list_dead_letters(std::string queue, std::size_t page_size,
                                 std::string page_token,
                                 callback<dead_letter_list> done) const {
  auto target = router();
  if (auto cb = unavailable_if_gone(target, done))
    post(target, {dlq_list_req{std::move(queue), page_size,
                               std::move(page_token), std::move(cb)}});
}

void task_api::retry_dead_letter(std::int64_t id, std::string by,
                                 callback<std::string> done) const {
  auto target = router();
  if (auto cb = unavailable_if_gone(target, done))
    post(target, {dlq_retry_req{id, std::move(by), std::move(cb)}});
}

caf::actor spawn_task_router(caf::actor_system& sys, context_ptr ctx,
                             router_options opts) {
  return sys.spawn(router_fun, std::move(ctx), std::move(opts));
}

} // namespace cerebelum::actors
