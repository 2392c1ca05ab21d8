// The CAF worker gateway: one actor for every C++ worker of the node.
//
// A worker's life at the gateway:
//
// ```
//  RegisterRequest      register_worker ok        drain / unregister
//  -------------> joining ----------------> serving -----------------> gone
//                   |  refused: error          |  keeps <= max_in_flight
//                   |                          |  polls + leased tasks;
//                   +--- down_msg -------------+  a leased task is pushed
//                        worker_lost(id): its leases fail as worker_lost
//                        and are re-queued at once (no lease expiry wait)
// ```
//
// Every facade callback runs on a CAF thread that is not the gateway's; it
// only sends the outcome back to the gateway (`answer_atom` / `polled_atom`),
// where state changes and response promises are handled.
//
// On a node with tokens a registration is authenticated before it joins:
//
// ```
//  RegisterRequest --token--------------------------> checker (token)
//                  \-no token: the sender's CAF node id -> peer_subjects
//                     (the guard's connection that claimed it) -> checker
//                     (subject)
//  allowed -> worker id owned? -> max_in_flight places of the principal's
//  waits (principal_waits) -> register_worker
// ```

#include "src/bridges/caf/worker_gateway.hpp"

#include <caf/actor_system.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "actors/attempt_token.hpp"
#include "actors/errc.hpp"
#include "src/bridges/worker_convert.hpp"
#include "wire/wire.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::actors {

namespace pb = cerebelum::worker;
using api::to_proto;
using api::to_wire_error;

namespace {

using answer_atom = caf::atom_constant<caf::atom("gw_answer")>;
using polled_atom = caf::atom_constant<caf::atom("gw_polled")>;
using joined_atom = caf::atom_constant<caf::atom("gw_joined")>;
using done_atom = caf::atom_constant<caf::atom("gw_done")>;
using check_atom = caf::atom_constant<caf::atom("gw_check")>;
using recheck_atom = caf::atom_constant<caf::atom("gw_rechk")>;

/// How long one poll waits in the router before it is renewed.
constexpr auto poll_wait = std::chrono::seconds{30};

struct worker_entry {
  std::string id;
  caf::actor handle;
  std::uint64_t session = 0;
  std::vector<std::string> queues;
  std::uint32_t max_in_flight = 1;
  bool joined = false;
  bool draining = false;
  /// Tokens pushed to the worker and not completed yet.
  std::set<std::string> leased;
  /// Pending polls by local id.
  std::map<std::uint64_t, poll_handle> polls;
  /// The drain request waiting for the pending polls to end.
  std::optional<caf::response_promise> drain_reply;
  /// The token it registered with (checked again while it stays); empty on
  /// a node without tokens.
  std::string token;
  /// Without a token: the subject of its verified client certificate, whose
  /// principal it is (checked again while it stays).
  std::string subject;
  /// The principal's role may replace workflow owners (permission
  /// ownership).
  bool may_replace = false;
  /// `max_in_flight` places of its principal's waiting requests, held
  /// while it is registered.
  api::principal_waits::ticket places;
  /// auth::worker_identity of the token ("" without tokens).
  std::string identity;
};

struct gateway_state {
  task_api_ptr tasks;
  gateway_security sec;
  /// Checks tokens on a thread of its own (a first check hashes for about
  /// a quarter of a second; a recheck may read the store).
  caf::actor checker;
  std::unordered_map<std::string, worker_entry> workers;
  std::map<caf::actor_addr, std::string> by_addr;
  /// Requests waiting for a facade callback, by local id.
  std::unordered_map<std::uint64_t, caf::response_promise> pending;
  std::uint64_t next_id = 1;

  ~gateway_state() {
    // The gateway stops (node shutdown or a crash): its workers lose their
    // connection with it, so their leases go back to the queues now.
    for (auto& [id, w] : workers) {
      for (auto& [pid, handle] : w.polls)
        handle.cancel();
      if (tasks) tasks->worker_lost(id, "the CAF worker gateway stopped");
    }
  }

  static inline const char* name = "worker_gateway";
};

using gateway_actor = caf::stateful_actor<gateway_state>;

/// The token checks of the gateway, one at a time on a thread of their own:
/// (check_atom, token, certificate subject, queues) -> (outcome, message,
/// name, token id, may replace workflow owners). A token, when sent, wins
/// over the subject.
caf::behavior checker_fun(caf::event_based_actor*,
                          std::shared_ptr<auth::authenticator> auth) {
  return {
    [auth](check_atom, const std::string& token, const std::string& subject,
           const std::vector<std::string>& queues) {
      auto v = auth->check("caf", "WorkerGateway/Register",
                           auth::presented{token, subject}, {{}, queues});
      std::string name;
      std::string token_id;
      bool may_replace = false;
      if (v.who) {
        name = v.who->name;
        token_id = v.who->token_id;
        may_replace = auth::allows(v.who->r, auth::permission::ownership);
      }
      return caf::make_message(static_cast<std::uint8_t>(v.result),
                               std::move(v.message), std::move(name),
                               std::move(token_id), may_replace);
    },
  };
}

/// The CAF port's error for a refused token check.
caf::error token_refusal(std::uint8_t outcome, const std::string& message) {
  using o = auth::verdict::outcome;
  return wire::make_error(static_cast<o>(outcome) == o::unauthenticated
                            ? wire::errc::unauthenticated
                            : wire::errc::permission_denied,
                          message);
}

/// Parks a response promise until the facade answers; returns its id.
std::uint64_t park(gateway_actor* self) {
  auto id = self->state.next_id++;
  self->state.pending.emplace(id, self->make_response_promise());
  return id;
}

/// A facade callback that sends its result back to the gateway as
/// `(answer_atom, id, value-or-error)`; `convert` maps the value.
template <class T, class F>
std::function<void(task_result<T>)>
answer_to(gateway_actor* self, std::uint64_t id, F convert) {
  auto me = caf::actor_cast<caf::actor>(self);
  return [me, id, convert](task_result<T> res) {
    if (res)
      caf::anon_send(me, answer_atom::value, id, convert(*res.value));
    else
      caf::anon_send(me, answer_atom::value, id, to_wire_error(*res.error));
  };
}

template <class T>
void deliver(gateway_actor* self, std::uint64_t id, T&& x) {
  auto i = self->state.pending.find(id);
  if (i == self->state.pending.end()) return;
  auto rp = std::move(i->second);
  self->state.pending.erase(i);
  rp.deliver(std::forward<T>(x));
}

/// The registered worker that sent the current message, or an error.
caf::expected<worker_entry*> sender_entry(gateway_actor* self,
                                          const std::string& worker_id) {
  auto i = self->state.workers.find(worker_id);
  if (i == self->state.workers.end() || !i->second.joined)
    return wire::make_error(wire::errc::unknown_worker,
                            "worker '" + worker_id + "' is not registered");
  auto sender = self->current_sender();
  if (sender && sender->address() != i->second.handle.address())
    return wire::make_error(wire::errc::unknown_worker,
                            "worker '" + worker_id
                              + "' is registered by another actor");
  return &i->second;
}

/// Drops `w` without telling the router (the caller does).
void forget(gateway_actor* self, const std::string& worker_id) {
  auto i = self->state.workers.find(worker_id);
  if (i == self->state.workers.end()) return;
  for (auto& [pid, handle] : i->second.polls)
    handle.cancel();
  self->demonitor(i->second.handle);
  self->state.by_addr.erase(i->second.handle.address());
  self->state.workers.erase(i);
}

/// The answer to a drain of `w`.
pb::DrainResponse drained(const worker_entry& w) {
  pb::DrainResponse res;
  res.set_leased(static_cast<std::uint32_t>(w.leased.size()));
  return res;
}

/// Fails unless `token` was pushed to `w` and is not completed yet.
caf::error check_leased(const worker_entry& w, const std::string& token) {
  if (w.leased.count(token) > 0) return caf::none;
  return wire::make_error(wire::errc::stale_attempt,
                          "attempt token '" + actors::redacted(token)
                            + "' is not leased to worker '" + w.id + "'");
}

/// Answers a pending drain once no poll of `w` can hand it a task anymore.
void maybe_drained(worker_entry& w) {
  if (!w.draining || !w.polls.empty() || !w.drain_reply) return;
  auto rp = std::move(*w.drain_reply);
  w.drain_reply.reset();
  rp.deliver(drained(w));
}

/// Keeps `max_in_flight` polls and leased tasks going for `w`.
void pump(gateway_actor* self, worker_entry& w) {
  auto& st = self->state;
  auto me = caf::actor_cast<caf::actor>(self);
  while (w.joined && !w.draining
         && w.leased.size() + w.polls.size() < w.max_in_flight) {
    auto pid = st.next_id++;
    auto handle
      = st.tasks->poll(w.id, {}, poll_wait,
                       [me, id = w.id, session = w.session,
                        pid](task_result<std::optional<leased_task>> res) {
                         if (res && *res.value)
                           caf::anon_send(me, polled_atom::value, id, session,
                                          pid, true, to_proto(**res.value));
                         else if (res)
                           caf::anon_send(me, polled_atom::value, id, session,
                                          pid, false, pb::Task{});
                         else
                           caf::anon_send(me, polled_atom::value, id, session,
                                          pid, to_wire_error(*res.error));
                       });
    w.polls.emplace(pid, std::move(handle));
  }
}

/// The entry of `id` if its session is `session`.
worker_entry* current(gateway_actor* self, const std::string& id,
                      std::uint64_t session) {
  auto i = self->state.workers.find(id);
  if (i == self->state.workers.end() || i->second.session != session)
    return nullptr;
  return &i->second;
}

/// Registers `w` with the router under a new session (answers of polls of
/// an earlier session are stale); `reply` is the parked request to answer
/// (0: none).
void join(gateway_actor* self, worker_entry& w, std::uint64_t reply,
          std::vector<workflow_source> workflows) {
  auto& st = self->state;
  for (auto& [pid, handle] : w.polls)
    handle.cancel();
  w.polls.clear();
  w.session = st.next_id++;
  w.joined = false;
  worker_registration fr;
  fr.worker_id = w.id;
  fr.queues = w.queues;
  fr.max_in_flight = w.max_in_flight;
  fr.workflows = std::move(workflows);
  fr.identity = w.identity;
  fr.may_replace = w.may_replace;
  auto me = caf::actor_cast<caf::actor>(self);
  st.tasks->register_worker(
    std::move(fr), [me, reply, wid = w.id,
                    session = w.session](task_result<registration_info> res) {
      if (res)
        caf::anon_send(me, joined_atom::value, reply, wid, session,
                       to_proto(*res.value));
      else
        caf::anon_send(me, joined_atom::value, reply, wid, session,
                       to_wire_error(*res.error));
    });
}

/// Refuses the parked registration `reply` of `wid` with `code`, logged.
void refuse(gateway_actor* self, std::uint64_t reply, const std::string& wid,
            wire::errc code, const std::string& why) {
  spdlog::warn("CAF worker {} refused: {}", workflow::printable(wid), why);
  deliver(self, reply, wire::make_error(code, why));
}

/// Admits `handle` as worker `req.worker_id()` once its token or
/// certificate (if the node requires one) was checked: `principal` and
/// `token_id` name its principal, `subject` the certificate it showed
/// without a token, `may_replace` says whether its role may replace
/// workflow owners. Answers the parked request `reply`.
void admit(gateway_actor* self, std::uint64_t reply,
           const pb::RegisterRequest& req, const caf::actor& handle,
           const std::string& principal, const std::string& token_id,
           const std::string& subject, bool may_replace) {
  auto& st = self->state;
  const auto& wid = req.worker_id();
  auto max_in_flight = std::max<std::uint32_t>(req.max_in_flight(), 1);
  if (st.sec.waits && max_in_flight > st.sec.waits->limit()) {
    // The gateway keeps that many polls in the task router for it.
    refuse(self, reply, wid, wire::errc::resource_exhausted,
           "worker '" + wid + "' asks for " + std::to_string(max_in_flight)
             + " tasks in flight; a CAF worker may ask for at most "
             + std::to_string(st.sec.waits->limit())
             + ", the waiting requests one principal may hold "
               "(--max-waits-per-principal)");
    return;
  }
  std::string identity;
  if (st.sec.auth) {
    auth::principal who;
    who.name = principal;
    who.token_id = token_id;
    identity = auth::worker_identity(who);
    if (auto why = st.sec.owners->admit(wid, who, true)) {
      spdlog::warn("CAF worker {} refused: {}", workflow::printable(wid), *why);
      deliver(self, reply,
              wire::make_error(wire::errc::permission_denied, *why));
      return;
    }
  }
  auto i = st.workers.find(wid);
  if (i != st.workers.end() && i->second.handle.address() != handle.address()) {
    deliver(self, reply,
            wire::make_error(wire::errc::already_registered,
                             "worker id '" + wid
                               + "' is in use by another connected worker"));
    return;
  }
  api::principal_waits::ticket places;
  if (st.sec.waits) {
    // A re-registration gives its earlier places back first.
    if (i != st.workers.end()) i->second.places.release();
    auto got = st.sec.waits->admit(principal, max_in_flight,
                                   "CAF worker '" + wid + "' (max_in_flight "
                                     + std::to_string(max_in_flight) + ")");
    if (!got) {
      if (i != st.workers.end()) {
        // It asked again for more than fits: its session ends.
        forget(self, wid);
        st.tasks->worker_lost(wid, "re-registration refused");
      }
      refuse(self, reply, wid, wire::errc::resource_exhausted,
             actors::api_error_message(got.error()));
      return;
    }
    places = std::move(*got);
  }
  if (i == st.workers.end()) {
    worker_entry w;
    w.id = wid;
    w.handle = handle;
    i = st.workers.emplace(wid, std::move(w)).first;
    st.by_addr.emplace(handle.address(), wid);
    self->monitor(handle);
  }
  auto& w = i->second;
  auto reg = api::to_registration(req);
  w.queues = reg.queues;
  w.max_in_flight = max_in_flight;
  w.token = req.token();
  w.subject = subject;
  w.may_replace = may_replace;
  w.places = std::move(places);
  w.identity = std::move(identity);
  join(self, w, reply, std::move(reg.workflows));
}

/// `node` as CAF writes it in a BASP client_handshake: the bytes the guard
/// claims for the connection that names it (peer_subjects.hpp).
std::optional<std::string> serialized(caf::actor_system& sys,
                                      const caf::node_id& node) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  if (sink(const_cast<caf::node_id&>(node))) return std::nullopt;
  return std::string{buf.begin(), buf.end()};
}

/// Checks the registration's token, else `subject` (the verified client
/// certificate its connection showed, "" for none), then admits it.
void authenticate(gateway_actor* self, std::uint64_t reply,
                  const pb::RegisterRequest& req, const caf::actor& handle,
                  const std::string& subject) {
  const auto& wid = req.worker_id();
  if (req.token().empty() && subject.empty()) {
    refuse(self, reply, wid, wire::errc::unauthenticated,
           "this node requires a token in the registration "
           "(worker_options::token; the example worker's --token) or, on a "
           "CAF port with --tls-client-ca, a client certificate bound to a "
           "principal (cerebelum token create --cert-subject)");
    return;
  }
  std::vector<std::string> queues{req.queues().begin(), req.queues().end()};
  self
    ->request(self->state.checker, caf::infinite, check_atom::value,
              req.token(), subject, std::move(queues))
    .then(
      [=](std::uint8_t outcome, const std::string& message,
          const std::string& principal, const std::string& token_id,
          bool may_replace) {
        if (static_cast<auth::verdict::outcome>(outcome)
            != auth::verdict::outcome::allowed) {
          spdlog::warn("CAF worker {} refused: {}", workflow::printable(wid),
                       message);
          deliver(self, reply, token_refusal(outcome, message));
          return;
        }
        admit(self, reply, req, handle, principal, token_id,
              req.token().empty() ? subject : std::string{}, may_replace);
      },
      [=](caf::error& err) {
        deliver(self, reply,
                wire::make_error(wire::errc::internal,
                                 "the token check failed: "
                                   + self->system().render(err)));
      });
}

/// The worker actor is the request's sender: a message of the CAF port holds
/// no actor handle.
caf::result<pb::RegisterResponse> on_register(gateway_actor* self,
                                              const pb::RegisterRequest& req) {
  auto& st = self->state;
  const auto& wid = req.worker_id();
  if (wid.empty())
    return wire::make_error(wire::errc::invalid_argument, "empty worker id");
  if (req.queues().empty())
    return wire::make_error(wire::errc::invalid_argument,
                            "worker '" + wid + "' serves no queue");
  for (auto& q : req.queues())
    if (q.empty())
      return wire::make_error(wire::errc::invalid_argument,
                              "worker '" + wid + "': empty queue name");
  auto handle = caf::actor_cast<caf::actor>(self->current_sender());
  if (!handle)
    return wire::make_error(wire::errc::invalid_argument,
                            "worker '" + wid + "' sent no actor");
  auto reply = park(self);
  if (!st.sec.auth) {
    admit(self, reply, req, handle, {}, {}, {}, false);
    return caf::delegated<pb::RegisterResponse>{};
  }
  if (!req.token().empty() || !st.sec.peers) {
    // A token wins over a certificate, as on gRPC and HTTPS.
    authenticate(self, reply, req, handle, {});
    return caf::delegated<pb::RegisterResponse>{};
  }
  // No token: which certificate did the guard's connection that claimed
  // the worker's node id show? Every CAF connection of a worker is one of
  // the guard's (upstream.hpp), and the guard lets one claim a node id.
  auto node = serialized(self->system(), handle.node());
  authenticate(self, reply, req, handle,
               node ? st.sec.peers->subject_of_node(*node) : std::string{});
  return caf::delegated<pb::RegisterResponse>{};
}

/// Checks the token of every registered worker again; a worker whose token
/// was revoked, expired or lost its role is told why and dropped, and its
/// leases go back to the queues.
void recheck_tokens(gateway_actor* self) {
  for (auto& [wid, w] : self->state.workers) {
    if (!w.joined) continue;
    self
      ->request(self->state.checker, caf::infinite, check_atom::value, w.token,
                w.subject, w.queues)
      .then(
        [=, wid = wid,
         session = w.session](std::uint8_t outcome, const std::string& message,
                              const std::string&, const std::string&, bool) {
          if (static_cast<auth::verdict::outcome>(outcome)
              == auth::verdict::outcome::allowed)
            return;
          auto* entry = current(self, wid, session);
          if (entry == nullptr) return;
          spdlog::warn("CAF worker {} dropped: {}", wid, message);
          self->send(entry->handle,
                     token_refusal(outcome,
                                   "the node ended the session of worker '"
                                     + wid + "': " + message));
          forget(self, wid);
          self->state.tasks->worker_lost(wid, "its token is no longer "
                                              "accepted: "
                                                + message);
        },
        [](caf::error&) {
          // The checker is gone with the gateway.
        });
  }
}

caf::behavior gateway_fun(gateway_actor* self, task_api_ptr tasks,
                          gateway_security sec) {
  self->state.tasks = std::move(tasks);
  if (sec.auth) {
    if (!sec.owners) sec.owners = std::make_shared<auth::worker_owners>();
    self->state.checker = self->spawn<caf::detached + caf::linked>(checker_fun,
                                                                   sec.auth);
    self->delayed_send(self, sec.recheck_interval, recheck_atom::value);
  }
  self->state.sec = std::move(sec);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    auto i = st.by_addr.find(msg.source);
    if (i == st.by_addr.end()) return;
    auto id = i->second;
    auto reason = self->system().render(msg.reason);
    auto leased = st.workers.count(id) ? st.workers[id].leased.size() : 0;
    spdlog::info("CAF worker {} lost ({}): its {} leased tasks are re-queued",
                 id, reason, leased);
    forget(self, id);
    st.tasks->worker_lost(id, "the CAF connection of worker " + id
                                + " was lost: " + reason);
  });
  // Whatever else arrives comes from an unauthenticated port: answer it as
  // CAF does (unexpected_message) without print_and_drop's line on stdout,
  // which would let any peer write megabytes to the node's log.
  self->set_default_handler(caf::drop);
  return {
    [=](const pb::RegisterRequest& req) {
      return on_register(self, req);
    },
    [=](recheck_atom) {
      recheck_tokens(self);
      self->delayed_send(self, self->state.sec.recheck_interval,
                         recheck_atom::value);
    },
    [=](joined_atom, std::uint64_t id, const std::string& wid,
        std::uint64_t session, pb::RegisterResponse& ok) {
      auto* w = current(self, wid, session);
      if (w == nullptr) {
        // Lost or re-registered in the meantime.
        deliver(self, id,
                wire::make_error(wire::errc::unknown_worker,
                                 "worker '" + wid
                                   + "' left during its registration"));
        return;
      }
      w->joined = true;
      spdlog::info("CAF worker {} registered (queues {}, max in flight {})",
                   wid, fmt::join(w->queues, ", "), w->max_in_flight);
      deliver(self, id, std::move(ok));
      pump(self, *w);
    },
    [=](joined_atom, std::uint64_t id, const std::string& wid,
        std::uint64_t session, caf::error& err) {
      spdlog::warn("CAF worker {} refused: {}", workflow::printable(wid),
                   wire::render_error(self->system(), err));
      auto* w = current(self, wid, session);
      if (w != nullptr && id == 0) {
        // A re-registration on the worker's behalf failed: it cannot serve.
        forget(self, wid);
        self->state.tasks->worker_lost(wid, "re-registration refused");
      } else if (w != nullptr && w->leased.empty()) {
        forget(self, wid);
      }
      deliver(self, id, std::move(err));
    },
    [=](polled_atom, const std::string& wid, std::uint64_t session,
        std::uint64_t pid, bool has_task, pb::Task& task) {
      auto* w = current(self, wid, session);
      if (w != nullptr) w->polls.erase(pid);
      if (w == nullptr || w->draining || !w->joined) {
        // Nobody to hand it to: back to the queue, same attempt.
        if (has_task) self->state.tasks->release(wid, task.attempt_token());
        if (w != nullptr) maybe_drained(*w);
        return;
      }
      if (has_task) {
        spdlog::debug("pushing {} ({} of {}, attempt {}) to CAF worker {}",
                      task.task_type(), task.step(), task.execution_id(),
                      task.attempt(), wid);
        w->leased.insert(task.attempt_token());
        self->send(w->handle, std::move(task));
      }
      pump(self, *w);
    },
    [=](polled_atom, const std::string& wid, std::uint64_t session,
        std::uint64_t pid, caf::error& err) {
      auto* w = current(self, wid, session);
      if (w == nullptr) return;
      w->polls.erase(pid);
      spdlog::warn("poll for CAF worker {} failed: {}", wid,
                   wire::render_error(self->system(), err));
      maybe_drained(*w);
      if (wire::error_code(err) == wire::errc::unknown_worker) {
        // The router forgot the worker (e.g. after a restart of the router):
        // register it again; its definitions are registered already.
        join(self, *w, 0, {});
        return;
      }
      // Retry later rather than spinning on a failing router.
      self->delayed_send(self, std::chrono::seconds{1}, polled_atom::value, wid,
                         session);
    },
    [=](polled_atom, const std::string& wid, std::uint64_t session) {
      if (auto* w = current(self, wid, session)) pump(self, *w);
    },
    [=](pb::HeartbeatRequest& hb) -> caf::result<pb::HeartbeatResponse> {
      auto w = sender_entry(self, hb.worker_id());
      if (!w) return std::move(w.error());
      if (auto err = check_leased(**w, hb.attempt_token())) return err;
      auto id = park(self);
      self->state.tasks->heartbeat(
        hb.worker_id(), hb.attempt_token(),
        std::move(*hb.mutable_details_json()),
        answer_to<heartbeat_info>(self, id, [](const heartbeat_info& x) {
          return to_proto(x);
        }));
      return caf::delegated<pb::HeartbeatResponse>{};
    },
    [=](const pb::CompleteTaskRequest& msg)
      -> caf::result<pb::CompleteTaskResponse> {
      auto w = sender_entry(self, msg.worker_id());
      if (!w) return std::move(w.error());
      if (auto err = check_leased(**w, msg.attempt_token())) return err;
      auto outcome = api::to_outcome(msg);
      if (!outcome) return to_wire_error(*outcome.error);
      auto id = park(self);
      auto me = caf::actor_cast<caf::actor>(self);
      self->state.tasks->complete(
        msg.worker_id(), msg.attempt_token(), std::move(*outcome.value),
        [me, id, wid = msg.worker_id(), session = (*w)->session,
         token = msg.attempt_token()](task_result<complete_info> res) {
          if (res)
            caf::anon_send(me, done_atom::value, id, wid, session, token,
                           to_proto(*res.value));
          else
            caf::anon_send(me, done_atom::value, id, wid, session, token,
                           to_wire_error(*res.error));
        });
      return caf::delegated<pb::CompleteTaskResponse>{};
    },
    [=](done_atom, std::uint64_t id, const std::string& wid,
        std::uint64_t session, const std::string& token,
        pb::CompleteTaskResponse& ack) {
      if (auto* w = current(self, wid, session)) {
        w->leased.erase(token);
        pump(self, *w);
      }
      deliver(self, id, std::move(ack));
    },
    [=](done_atom, std::uint64_t id, const std::string& wid,
        std::uint64_t session, const std::string& token, caf::error& err) {
      if (auto* w = current(self, wid, session)) {
        // Unavailable: the lease still stands, the worker may try again.
        if (wire::error_code(err) != wire::errc::unavailable) {
          w->leased.erase(token);
          pump(self, *w);
        }
      }
      deliver(self, id, std::move(err));
    },
    [=](const pb::DrainRequest& req) -> caf::result<pb::DrainResponse> {
      auto w = sender_entry(self, req.worker_id());
      if (!w) return std::move(w.error());
      (*w)->draining = true;
      for (auto& [pid, handle] : (*w)->polls)
        handle.cancel();
      if ((*w)->polls.empty()) return drained(**w);
      // Answered once the cancelled polls report (a task leased by one of
      // them is released, not pushed).
      auto rp = self->make_response_promise<pb::DrainResponse>();
      (*w)->drain_reply = rp;
      return rp;
    },
    [=](
      const pb::UnregisterRequest& req) -> caf::result<pb::UnregisterResponse> {
      const auto& wid = req.worker_id();
      auto w = sender_entry(self, wid);
      if (!w) return std::move(w.error());
      forget(self, wid);
      if (self->state.sec.owners) self->state.sec.owners->release(wid);
      auto id = park(self);
      self->state.tasks->unregister(
        wid, answer_to<std::uint32_t>(self, id, api::unregistered));
      spdlog::info("CAF worker {} unregistered", workflow::printable(wid));
      return caf::delegated<pb::UnregisterResponse>{};
    },
    [=](answer_atom, std::uint64_t id, pb::HeartbeatResponse& x) {
      deliver(self, id, std::move(x));
    },
    [=](answer_atom, std::uint64_t id, pb::UnregisterResponse& x) {
      deliver(self, id, std::move(x));
    },
    [=](answer_atom, std::uint64_t id, caf::error& err) {
      deliver(self, id, std::move(err));
    },
  };
}

} // namespace

caf::actor spawn_worker_gateway(caf::actor_system& sys, task_api_ptr tasks,
                                gateway_security sec) {
  return sys.spawn(gateway_fun, std::move(tasks), std::move(sec));
}

namespace {

/// The port number under which the BASP broker keeps the gateway for the
/// guard's connections (its server handshake names the actor published
/// there). No socket has it: the connections come in as socket pairs.
constexpr std::uint16_t gateway_slot = 1;

/// Hands CAF's BASP broker one end of a new socket pair as a connection it
/// accepted for `gateway`, and returns the other end (nonblocking) for the
/// guard; -1 with `why` when it cannot.
int open_gateway_connection(caf::io::middleman& mm, const caf::actor& basp,
                            const caf::weak_actor_ptr& gateway,
                            std::string& why) {
  auto target = gateway.lock();
  if (!target) {
    why = "the worker gateway exited (restarting)";
    return -1;
  }
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    why = std::string{"cannot open a connection to the worker gateway: "}
          + std::strerror(errno);
    return -1;
  }
  int flags = ::fcntl(fds[1], F_GETFL);
  if (flags < 0 || ::fcntl(fds[1], F_SETFL, flags | O_NONBLOCK) != 0) {
    why = std::string{"cannot open a connection to the worker gateway: "}
          + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  // CAF owns fds[0] from here: its broker writes the server handshake
  // naming the gateway and reads the worker's BASP frames from it.
  auto scribe = mm.backend().new_scribe(fds[0]);
  caf::anon_send(basp, caf::publish_atom::value, std::move(scribe),
                 gateway_slot, std::move(target), std::set<std::string>{});
  return fds[1];
}

} // namespace

supervision::child_spec worker_gateway_spec(task_api_ptr tasks,
                                            caf_guard::upstream_ptr upstream,
                                            gateway_security sec) {
  supervision::child_spec spec;
  spec.id = "caf_gateway";
  spec.restart = supervision::restart_type::permanent;
  spec.shutdown = supervision::shutdown_timeout(std::chrono::seconds{5});
  spec.start = [tasks, upstream,
                sec](caf::actor_system& sys,
                     const caf::message&) -> caf::expected<caf::actor> {
    auto& mm = sys.middleman();
    auto basp = mm.named_broker<caf::io::basp_broker>(caf::atom("BASP"));
    auto gateway = spawn_worker_gateway(sys, tasks, sec);
    auto owner = gateway.id();
    // A restarted gateway takes the guard's next connections.
    if (upstream)
      upstream->set(owner, [&mm, basp,
                            weak = caf::actor_cast<caf::weak_actor_ptr>(
                              gateway)](std::string& why) {
        return open_gateway_connection(mm, basp, weak, why);
      });
    gateway->attach_functor([upstream, owner, basp, addr = gateway.address()] {
      // Only this gateway's: its successor may have taken over already.
      if (upstream) upstream->clear(owner);
      caf::anon_send(basp, caf::unpublish_atom::value, addr, gateway_slot);
    });
    spdlog::info("CAF worker gateway started (the guard hands it each "
                 "worker's connection; it listens on no port)");
    return gateway;
  };
  return spec;
}

} // namespace cerebelum::actors
