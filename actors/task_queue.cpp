#include "actors/task_queue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

#include "actors/attempt_token.hpp"
#include "actors/task_checks.hpp"
#include "workflow/execution_state.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::actors {

namespace {

/// Tokens remembered after they left (retried calls, late heartbeats);
/// older entries are dropped.
constexpr std::size_t memory_limit = 100'000;

task_error unknown_worker(const std::string& w) {
  return {task_errc::unknown_worker,
          "worker '" + workflow::printable(w)
            + "' is not registered (call Register first)"};
}

task_error stale(const std::string& external, const std::string& worker,
                 const std::string& why) {
  return {task_errc::stale_token,
          "attempt " + workflow::printable(redacted(external), 120)
            + " is not leased to worker '" + workflow::printable(worker) + "'"
            + (why.empty() ? std::string{} : ": " + why)};
}

task_error unknown_token(const std::string& external) {
  return {task_errc::stale_token,
          "unknown attempt token '"
            + workflow::printable(redacted(external), 120) + "'"};
}

} // namespace

task_queue::task_queue(router_options opts) : opts_(std::move(opts)) {
  // nop
}

// -- helpers ------------------------------------------------------------------

const queue_options& task_queue::qopts(const std::string& q) const {
  auto i = opts_.queues.find(q);
  return i == opts_.queues.end() ? opts_.defaults : i->second;
}

std::int64_t task_queue::lease_length(const task_entry& e) const {
  return e.heartbeat_timeout_ms > 0 ? e.heartbeat_timeout_ms
                                    : opts_.default_lease.count();
}

void task_queue::remember_gone(const std::string& token, gone_entry entry) {
  if (gone_.insert_or_assign(token, std::move(entry)).second)
    gone_order_.push_back(token);
  while (gone_order_.size() > memory_limit) {
    gone_.erase(gone_order_.front());
    gone_order_.pop_front();
  }
}

bool task_queue::holds(const task_entry& e, const std::string& worker,
                       const attempt_ref& ref) {
  return e.owner == worker && secret_matches(e.secret, ref.secret);
}

void task_queue::add_deadline(std::int64_t due, std::uint64_t poll_id,
                              const std::string& token) {
  deadlines_.push({due, poll_id, token});
}

bool task_queue::stands(const deadline& d) const {
  if (d.poll_id != 0) {
    auto p = pollers_.find(d.poll_id);
    return p != pollers_.end() && p->second.deadline_ms == d.due;
  }
  auto i = tasks_.find(d.token);
  if (i == tasks_.end()) return false;
  auto& e = i->second;
  auto timeout = opts_.commit_timeout.count();
  switch (e.state) {
    case lease_state::leased: return e.lease_expires_at_ms == d.due;
    case lease_state::completing:
      return e.completing_since_ms + timeout == d.due;
    case lease_state::failing:
      return e.failure && e.completing_since_ms + timeout == d.due;
    case lease_state::ready: return false;
  }
  return false;
}

void task_queue::parse_payload(task_entry& e) {
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

void task_queue::detach(task_entry& e, const std::string& token) {
  auto& q = queues_[e.row.queue];
  if (e.state == lease_state::ready) {
    q.ready.erase({e.row.available_at_ms, token});
  } else if (e.state == lease_state::leased
             || e.state == lease_state::completing) {
    if (q.leased > 0) --q.leased;
    if (auto w = workers_.find(e.owner); w != workers_.end())
      w->second.leased.erase(token);
  }
}

leased_task task_queue::to_leased(const task_entry& e) const {
  leased_task t;
  t.task_id = e.row.task_id;
  t.attempt_token = external_token(e.row.execution_id, e.secret, e.row.task_id);
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

void task_queue::send(const task_entry& e, events::Event ev) {
  effects_.emplace_back(
    event_to_send{e.row.execution_id, e.row.task_id,
                  std::make_shared<const events::Event>(std::move(ev))});
}

void task_queue::answer_poll(std::uint64_t id,
                             std::optional<leased_task> task) {
  effects_.emplace_back(poll_answered{
    id, task_result<std::optional<leased_task>>::ok(std::move(task))});
}

void task_queue::answer_completion(const std::string& token,
                                   task_result<complete_info> result) {
  effects_.emplace_back(completion_answered{token, std::move(result)});
}

std::vector<queue_effect> task_queue::take_effects() {
  std::vector<queue_effect> out;
  out.swap(effects_);
  return out;
}

std::vector<task_queue::queue_figures> task_queue::figures() const {
  std::map<std::string_view, std::uint64_t> workers;
  for (auto& [id, w] : workers_)
    for (auto& qname : w.queues)
      ++workers[qname];
  std::vector<queue_figures> out;
  out.reserve(queues_.size());
  for (auto& [name, q] : queues_) {
    auto n = workers.find(name);
    out.push_back({name, q.ready.size(), q.leased,
                   n == workers.end() ? 0 : n->second, q.lease_expiries});
  }
  return out;
}

std::vector<task_queue::finished_task> task_queue::take_finished() {
  return std::exchange(finished_, {});
}

std::uint64_t task_queue::ready_tasks() const {
  std::uint64_t n = 0;
  for (auto& [name, q] : queues_)
    n += q.ready.size();
  return n;
}

// -- rows ---------------------------------------------------------------------

void task_queue::upsert(eventstore::task_row row) {
  auto token = row.task_id;
  if (auto old = tasks_.find(token); old != tasks_.end()) {
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
  const auto& qo = qopts(e.row.queue);
  if (qo.sticky_ms > 0) {
    if (auto w = last_worker_.find(e.row.execution_id);
        w != last_worker_.end()) {
      e.sticky_worker = w->second;
      e.sticky_until_ms = e.row.available_at_ms + qo.sticky_ms;
    }
  }
  queues_[e.row.queue].ready.emplace(e.row.available_at_ms, token);
  tasks_.emplace(token, std::move(e));
}

void task_queue::remove(const std::string& token, std::int64_t now) {
  auto i = tasks_.find(token);
  if (i == tasks_.end()) return;
  auto& e = i->second;
  if (e.state == lease_state::completing) {
    last_worker_[e.row.execution_id] = e.owner;
    if (last_worker_.size() > memory_limit) last_worker_.clear();
    remember_gone(token, {e.owner, e.secret, "already recorded", true, false});
    auto waits = e.completion_waits;
    auto next_for = e.next_wanted ? e.owner : std::string{};
    detach(e, token);
    tasks_.erase(i);
    if (!waits) return;
    complete_info info;
    if (!next_for.empty()) info.next = lease_next(next_for, now);
    answer_completion(token, task_result<complete_info>::ok(std::move(info)));
    return;
  }
  if (e.state == lease_state::leased)
    remember_gone(token,
                  {e.owner, e.secret,
                   "the execution no longer waits for this attempt (step "
                   "timed out, execution cancelled or ended)",
                   false, true});
  detach(e, token);
  tasks_.erase(i);
}

void task_queue::refuse(const std::string& token) {
  auto i = tasks_.find(token);
  if (i == tasks_.end()) return;
  auto& e = i->second;
  if (e.state == lease_state::completing) {
    auto waits = e.completion_waits;
    remember_gone(token, {e.owner, e.secret,
                          "the execution no longer waits for this attempt",
                          false, false});
    detach(e, token);
    tasks_.erase(i);
    if (waits)
      answer_completion(
        token, task_result<complete_info>::fail(
                 task_errc::stale_token,
                 "attempt refused: the execution no longer waits for it "
                 "(lease expired, step timed out or execution ended)"));
  } else if (e.state == lease_state::failing) {
    detach(e, token);
    tasks_.erase(i);
  }
}

// -- workers ------------------------------------------------------------------

void task_queue::add_worker(const std::string& worker,
                            const std::vector<std::string>& queues,
                            std::uint32_t max_in_flight, std::int64_t now) {
  auto& w = workers_[worker];
  w.queues = {queues.begin(), queues.end()};
  w.max_in_flight = std::max<std::uint32_t>(1, max_in_flight);
  for (auto& q : queues)
    queues_[q];
  dispatch(now);
}

bool task_queue::has_worker(const std::string& worker) const {
  return workers_.count(worker) > 0;
}

std::uint32_t task_queue::drop_worker(const std::string& worker,
                                      const std::string& why,
                                      std::int64_t now) {
  auto w = workers_.find(worker);
  if (w == workers_.end()) return 0;
  std::vector<std::string> tokens(w->second.leased.begin(),
                                  w->second.leased.end());
  std::uint32_t n = 0;
  for (auto& t : tokens) {
    if (tasks_.at(t).state != lease_state::leased)
      continue; // an outcome is on
                // its way
    fail_attempt(t, "worker_lost", why, now);
    ++n;
  }
  for (auto i = pollers_.begin(); i != pollers_.end();) {
    if (i->second.worker == worker) {
      auto id = i->first;
      i = pollers_.erase(i);
      answer_poll(id, std::nullopt);
    } else {
      ++i;
    }
  }
  // Tokens in `completing` stay owned by the worker's name until committed.
  if (std::all_of(w->second.leased.begin(), w->second.leased.end(),
                  [&](const std::string& t) {
                    return tasks_.at(t).state != lease_state::completing;
                  }))
    workers_.erase(w);
  else
    w->second.queues.clear();
  dispatch(now);
  return n;
}

void task_queue::poll(std::uint64_t poll_id, const std::string& worker,
                      std::vector<std::string> queues,
                      std::chrono::milliseconds wait, std::int64_t now) {
  auto w = workers_.find(worker);
  if (w == workers_.end()) {
    effects_.emplace_back(
      poll_answered{poll_id, {std::nullopt, unknown_worker(worker)}});
    return;
  }
  if (queues.empty())
    queues.assign(w->second.queues.begin(), w->second.queues.end());
  for (auto& q : queues)
    if (w->second.queues.count(q) == 0) {
      effects_.emplace_back(
        poll_answered{poll_id, task_result<std::optional<leased_task>>::fail(
                                 task_errc::unknown_queue,
                                 "queue '" + workflow::printable(q)
                                   + "' is not registered by worker '"
                                   + workflow::printable(worker) + "'")});
      return;
    }
  if (wait.count() <= 0) wait = opts_.default_poll_wait;
  wait = std::min(wait, opts_.max_poll_wait);
  auto deadline_ms = now + wait.count();
  pollers_.emplace(poll_id, poller{worker, std::move(queues), deadline_ms});
  add_deadline(deadline_ms, poll_id, {});
  dispatch(now);
}

void task_queue::cancel_poll(std::uint64_t poll_id) {
  if (pollers_.erase(poll_id) > 0) answer_poll(poll_id, std::nullopt);
}

void task_queue::release(const std::string& worker, const std::string& external,
                         std::int64_t now) {
  auto ref = parse_external_token(external);
  if (!ref) return;
  auto i = tasks_.find(ref->token);
  if (i == tasks_.end() || !holds(i->second, worker, *ref)
      || i->second.state != lease_state::leased)
    return;
  auto& e = i->second;
  detach(e, ref->token);
  e.state = lease_state::ready;
  e.owner.clear();
  e.secret.clear();
  queues_[e.row.queue].ready.emplace(e.row.available_at_ms, ref->token);
  dispatch(now);
}

task_result<heartbeat_info>
task_queue::heartbeat(const std::string& worker, const std::string& external,
                      const std::string& details_json, std::int64_t now) {
  using res_t = task_result<heartbeat_info>;
  auto ref = parse_external_token(external);
  if (!ref) return {std::nullopt, unknown_token(external)};
  if (workers_.count(worker) == 0)
    return {std::nullopt, unknown_worker(worker)};
  if (auto err = check_json(details_json, "details_json", true))
    return {std::nullopt, std::move(err)};
  auto i = tasks_.find(ref->token);
  if (i == tasks_.end() || !holds(i->second, worker, *ref)
      || (i->second.state != lease_state::leased
          && i->second.state != lease_state::completing)) {
    auto g = gone_.find(ref->token);
    if (g != gone_.end() && g->second.cancelled && g->second.worker == worker
        && secret_matches(g->second.secret, ref->secret))
      return res_t::ok({0, true});
    return {std::nullopt,
            stale(external, worker,
                  g != gone_.end() ? g->second.why : std::string{})};
  }
  auto& e = i->second;
  e.lease_expires_at_ms = now + lease_length(e);
  if (e.state == lease_state::leased)
    add_deadline(e.lease_expires_at_ms, 0, ref->token);
  if (!details_json.empty()
      && now - e.last_progress_ms >= opts_.progress_interval.count()) {
    e.last_progress_ms = now;
    events::Event ev;
    auto* p = ev.mutable_step_progress();
    p->set_step(e.row.step);
    p->set_attempt_token(e.row.task_id);
    p->set_details_json(details_json);
    p->set_worker_id(worker);
    p->set_at_ms(now);
    send(e, std::move(ev));
  }
  return res_t::ok({e.lease_expires_at_ms, false});
}

complete_decision task_queue::complete(const std::string& worker,
                                       const std::string& external,
                                       const task_outcome& outcome,
                                       std::int64_t now, bool want_next) {
  auto answer = [](task_result<complete_info> r) {
    complete_decision d;
    d.kind = complete_decision::answered;
    d.answer = std::move(r);
    return d;
  };
  auto ref = parse_external_token(external);
  if (!ref) return answer({std::nullopt, unknown_token(external)});
  auto& token = ref->token;
  auto i = tasks_.find(token);
  if (i != tasks_.end() && holds(i->second, worker, *ref)
      && i->second.state == lease_state::leased) {
    auto& e = i->second;
    attempt_info a{e.row.step, static_cast<std::uint32_t>(e.row.attempt),
                   e.row.task_id, e.map_index};
    auto ev = outcome_event(a, worker, outcome, now, opts_.max_payload_bytes);
    if (!ev) return answer({std::nullopt, std::move(ev.error)});
    finished_.push_back(
      {ev.value->has_step_completed(),
       static_cast<double>(now - e.row.available_at_ms) / 1e3});
    e.state = lease_state::completing;
    e.completion_waits = true;
    e.next_wanted = want_next;
    e.completing_since_ms = now;
    add_deadline(now + opts_.commit_timeout.count(), 0, token);
    send(e, std::move(*ev.value));
    complete_decision d;
    d.kind = complete_decision::pending;
    d.token = token;
    return d;
  }
  if (i != tasks_.end() && holds(i->second, worker, *ref)
      && i->second.state == lease_state::completing)
    return answer(task_result<complete_info>::fail(
      task_errc::unavailable, "an outcome of this attempt is being recorded; "
                              "retry the call"));
  if (auto g = gone_.find(token); g != gone_.end()) {
    if (g->second.recorded && g->second.worker == worker
        && secret_matches(g->second.secret, ref->secret))
      return answer(task_result<complete_info>::ok({false, std::nullopt}));
    return answer({std::nullopt, stale(external, worker, g->second.why)});
  }
  if (i != tasks_.end())
    return answer({std::nullopt, stale(external, worker, {})});
  complete_decision d;
  d.kind = complete_decision::look_in_history;
  d.execution_id = ref->execution_id;
  d.token = token;
  return d;
}

// -- dispatch and time --------------------------------------------------------

task_queue::pick_result task_queue::pick(const std::string& worker,
                                         const std::vector<std::string>& queues,
                                         std::int64_t now) {
  std::string best;
  std::int64_t best_at = 0;
  std::int64_t held_until = 0;
  for (auto& qname : queues) {
    auto qi = queues_.find(qname);
    if (qi == queues_.end() || qi->second.ready.empty()) continue;
    auto limit = qopts(qname).max_concurrency;
    if (limit > 0 && qi->second.leased >= limit) continue;
    for (auto& [at, token] : qi->second.ready) {
      if (!best.empty() && at >= best_at) break;
      auto& e = tasks_.at(token);
      bool eligible = e.sticky_worker.empty() || e.sticky_worker == worker
                      || now >= e.sticky_until_ms
                      || workers_.count(e.sticky_worker) == 0;
      if (!eligible) {
        if (held_until == 0 || e.sticky_until_ms < held_until)
          held_until = e.sticky_until_ms;
        continue;
      }
      best = token;
      best_at = at;
      break;
    }
  }
  return {best, best.empty() ? held_until : 0};
}

void task_queue::dispatch(std::int64_t now) {
  sticky_due_ = 0;
  for (auto i = pollers_.begin(); i != pollers_.end();) {
    auto w = workers_.find(i->second.worker);
    if (w == workers_.end()
        || w->second.leased.size() >= w->second.max_in_flight) {
      ++i;
      continue;
    }
    auto found = pick(i->second.worker, i->second.queues, now);
    if (found.token.empty()) {
      if (found.sticky_until_ms != 0
          && (sticky_due_ == 0 || found.sticky_until_ms < sticky_due_))
        sticky_due_ = found.sticky_until_ms;
      ++i;
      continue;
    }
    auto id = i->first;
    auto task = lease(w->second, i->second.worker, found.token, now);
    i = pollers_.erase(i);
    answer_poll(id, std::move(task));
  }
}

std::int64_t task_queue::timeout_due(const std::string& token,
                                     std::int64_t now) const {
  auto i = tasks_.find(token);
  if (i == tasks_.end()) return 0;
  auto& e = i->second;
  if (e.start_to_close_timeout_ms <= 0) return 0;
  std::int64_t due = 0;
  switch (e.state) {
    case lease_state::ready: due = now + e.start_to_close_timeout_ms; break;
    case lease_state::leased:
      due = e.leased_at_ms + e.start_to_close_timeout_ms;
      break;
    default: return 0; // its outcome or failure is on its way
  }
  return due > now ? due : 0;
}

leased_task task_queue::lease(worker_entry& w, const std::string& worker,
                              const std::string& token, std::int64_t now) {
  auto& e = tasks_.at(token);
  auto& q = queues_[e.row.queue];
  q.ready.erase({e.row.available_at_ms, token});
  ++q.leased;
  e.state = lease_state::leased;
  e.owner = worker;
  // A fresh secret per lease: a token of an earlier lease of this task (a
  // release, or before a restart) no longer acts on it.
  e.secret = new_lease_secret();
  e.leased_at_ms = now;
  e.lease_expires_at_ms = now + lease_length(e);
  e.last_progress_ms = 0;
  add_deadline(e.lease_expires_at_ms, 0, token);
  w.leased.insert(token);
  ++leased_total_;
  return to_leased(e);
}

std::optional<leased_task> task_queue::lease_next(const std::string& worker,
                                                  std::int64_t now) {
  auto w = workers_.find(worker);
  if (w == workers_.end() || w->second.leased.size() >= w->second.max_in_flight)
    return std::nullopt;
  std::vector<std::string> queues{w->second.queues.begin(),
                                  w->second.queues.end()};
  auto found = pick(worker, queues, now);
  if (found.token.empty()) return std::nullopt;
  return lease(w->second, worker, found.token, now);
}

void task_queue::fail_attempt(const std::string& token, const std::string& kind,
                              const std::string& message, std::int64_t now) {
  auto& e = tasks_.at(token);
  auto worker = e.owner;
  auto secret = std::move(e.secret);
  detach(e, token);
  e.state = lease_state::failing;
  e.owner.clear();
  e.secret.clear();
  remember_gone(token, {worker, std::move(secret), message, false, false});
  events::Event ev;
  auto* f = ev.mutable_step_failed();
  f->set_step(e.row.step);
  f->set_attempt(static_cast<std::uint32_t>(e.row.attempt));
  f->set_attempt_token(e.row.task_id);
  f->set_map_index(e.map_index);
  f->set_failed_at_ms(now);
  if (kind == "worker_lost") f->set_worker_id(worker);
  // The engine lost the attempt: its re-offer policy, not the step's retry
  // budget, decides first.
  f->set_lost(true);
  auto* err = f->mutable_error();
  err->set_kind(kind);
  err->set_message(message);
  err->set_retryable(true);
  spdlog::info("task router: attempt {} of {} ({}): {}", e.row.attempt,
               e.row.step, e.row.execution_id, message);
  e.failure = std::make_shared<const events::Event>(ev);
  e.completing_since_ms = now;
  add_deadline(now + opts_.commit_timeout.count(), 0, token);
  send(e, std::move(ev));
}

void task_queue::expire(std::int64_t now) {
  auto timeout = opts_.commit_timeout.count();
  while (!deadlines_.empty() && deadlines_.top().due <= now) {
    auto d = deadlines_.top();
    deadlines_.pop();
    if (!stands(d)) continue;
    if (d.poll_id != 0) {
      pollers_.erase(d.poll_id);
      answer_poll(d.poll_id, std::nullopt);
      continue;
    }
    auto& e = tasks_.at(d.token);
    if (e.state == lease_state::leased) {
      // A step's own heartbeat_timeout passed, or the node's task lease.
      ++queues_[e.row.queue].lease_expiries;
      if (e.heartbeat_timeout_ms > 0)
        fail_attempt(d.token, "heartbeat_timeout",
                     "no heartbeat from worker '" + e.owner + "' for "
                       + std::to_string(lease_length(e))
                       + " ms (the step's heartbeat_timeout)",
                     now);
      else
        fail_attempt(
          d.token, "lease_expired",
          "lease of worker '" + e.owner + "' expired (no heartbeat for "
            + std::to_string(lease_length(e)) + " ms, the node's --task-lease)",
          now);
    } else if (e.state == lease_state::completing) {
      // Not committed in time: the worker may retry; the lease is kept.
      e.state = lease_state::leased;
      e.lease_expires_at_ms = now + lease_length(e);
      add_deadline(e.lease_expires_at_ms, 0, d.token);
      if (e.completion_waits) {
        e.completion_waits = false;
        answer_completion(
          d.token, task_result<complete_info>::fail(
                     task_errc::unavailable,
                     "the outcome was not committed in time; retry the call"));
      }
    } else if (e.state == lease_state::failing) {
      // Not answered yet (its execution waits for its workflow to be
      // registered again, or the message was lost): send it again.
      e.completing_since_ms = now;
      add_deadline(now + timeout, 0, d.token);
      send(e, *e.failure);
    }
  }
  dispatch(now);
}

std::int64_t task_queue::next_due() {
  while (!deadlines_.empty() && !stands(deadlines_.top()))
    deadlines_.pop();
  std::int64_t due = deadlines_.empty() ? 0 : deadlines_.top().due;
  if (sticky_due_ != 0 && !pollers_.empty() && (due == 0 || sticky_due_ < due))
    due = sticky_due_;
  return due;
}

} // namespace cerebelum::actors
