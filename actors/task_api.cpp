#include "actors/task_api.hpp"

// The task router's facade (task_api.hpp): its requests and their answers.
// Apart from the router's behaviour (task_router.cpp), so that a front end
// links the facade without the router (the fuzz harness of the
// AdminService, tests/fuzz).

#include <caf/actor_system.hpp>
#include <caf/make_actor.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace cerebelum::actors {

namespace {

std::atomic<std::uint64_t> next_poll_id{1};

// -- the facade's requests ----------------------------------------------------

/// Receives the router's answers to the facade's requests and runs each
/// request's callback at once, on the thread that delivers the answer (the
/// router's): no actor is spawned, scheduled and cleaned up per request.
/// Requests to a router that stops are answered `unavailable`: those still
/// in its mailbox come back as errors, those it held are failed when it
/// exits.
class reply_sink final : public caf::monitorable_actor {
 public:
  /// Runs with the answer, or with null when the router is gone.
  using handler = std::function<void(caf::message*)>;

  reply_sink() : reply_sink(caf::actor_config{}) {
    // nop
  }

  explicit reply_sink(caf::actor_config cfg) : caf::monitorable_actor(cfg) {
    // nop
  }

  /// Sends `xs` to `router` now, from the calling thread (so it keeps its
  /// order with the caller's other messages, e.g. a poll and its
  /// cancellation), as a request whose answer goes to `fn`.
  template <class... Ts>
  void request(const task_router_actor& router, handler fn, Ts&&... xs) {
    auto* target = caf::actor_cast<caf::abstract_actor*>(router);
    auto router_id = target->id();
    std::uint64_t id = 0;
    bool watch = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      id = ++last_id_;
      pending_.emplace(id, entry{router_id, std::move(fn)});
      watch = watched_.insert(router_id).second;
    }
    // Runs at once if the router is gone already.
    if (watch)
      target->attach_functor(
        [sink = caf::strong_actor_ptr{ctrl()}, router_id](const caf::error&) {
          static_cast<reply_sink*>(caf::actor_cast<caf::abstract_actor*>(sink))
            ->router_gone(router_id);
        });
    auto mid = caf::message_id{id}.with_normal_priority();
    target->enqueue(caf::make_mailbox_element(caf::strong_actor_ptr{ctrl()},
                                              mid, {}, std::forward<Ts>(xs)...),
                    nullptr);
  }

  void enqueue(caf::mailbox_element_ptr what, caf::execution_unit*) override {
    if (!what->mid.is_response()) return;
    handler fn;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto i = pending_.find(what->mid.request_id().integer_value());
      if (i == pending_.end()) return;
      fn = std::move(i->second.fn);
      pending_.erase(i);
    }
    auto msg = what->move_content_to_message();
    fn(&msg);
  }

 private:
  struct entry {
    caf::actor_id router;
    handler fn;
  };

  void router_gone(caf::actor_id router) {
    std::vector<handler> failed;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      watched_.erase(router);
      for (auto i = pending_.begin(); i != pending_.end();) {
        if (i->second.router == router) {
          failed.push_back(std::move(i->second.fn));
          i = pending_.erase(i);
        } else {
          ++i;
        }
      }
    }
    for (auto& fn : failed)
      fn(nullptr);
  }

  std::mutex mtx_;
  std::uint64_t last_id_ = 0;
  std::unordered_map<std::uint64_t, entry> pending_;
  std::unordered_set<caf::actor_id> watched_;
};

} // namespace

// -- facade -------------------------------------------------------------------

void poll_handle::cancel() const {
  if (router_) caf::anon_send(router_, task_unpoll_atom::value, id_);
}

task_api::task_api(task_router_actor router) : router_(std::move(router)) {
  // nop
}

task_api::task_api(std::function<task_router_actor()> locate)
  : locate_(std::move(locate)) {
  // nop
}

task_router_actor task_api::router() const {
  return locate_ ? locate_() : router_;
}

/// Sends `xs` to `target` now; `done` runs once with its answer, or with
/// `unavailable` when the router is not running or stops first.
template <class T, class... Ts>
void task_api::ask(const task_router_actor& target, std::function<void(T)> done,
                   Ts&&... xs) const {
  if (!target) {
    done(
      T::fail(task_errc::unavailable, "the node's task router is not running"));
    return;
  }
  caf::actor sink;
  {
    std::lock_guard<std::mutex> guard{sink_mtx_};
    if (!sink_) {
      auto& sys = target.home_system();
      sink_ = caf::make_actor<reply_sink, caf::actor>(sys.next_actor_id(),
                                                      sys.node(), &sys);
    }
    sink = sink_;
  }
  static_cast<reply_sink*>(caf::actor_cast<caf::abstract_actor*>(sink))
    ->request(
      target,
      [done = std::move(done)](caf::message* msg) {
        if (msg != nullptr && msg->match_elements<T>()) {
          done(std::move(msg->get_mutable_as<T>(0)));
          return;
        }
        done(T::fail(task_errc::unavailable, "the node's task router stopped"));
      },
      std::forward<Ts>(xs)...);
}

void task_api::register_worker(worker_registration reg,
                               callback<registration_info> done) const {
  ask(router(), std::move(done), task_register_atom::value, std::move(reg));
}

poll_handle task_api::poll(std::string worker_id,
                           std::vector<std::string> queues,
                           std::chrono::milliseconds wait,
                           callback<std::optional<leased_task>> done) const {
  auto id = next_poll_id.fetch_add(1);
  auto target = router();
  ask(target, std::move(done), task_poll_atom::value, id, std::move(worker_id),
      std::move(queues), static_cast<std::int64_t>(wait.count()));
  return {target, id};
}

void task_api::release(std::string worker_id, std::string token) const {
  if (auto target = router())
    caf::anon_send(target, task_release_atom::value, std::move(worker_id),
                   std::move(token));
}

void task_api::heartbeat(std::string worker_id, std::string token,
                         std::string details_json,
                         callback<heartbeat_info> done) const {
  ask(router(), std::move(done), task_beat_atom::value, std::move(worker_id),
      std::move(token), std::move(details_json));
}

void task_api::complete(std::string worker_id, std::string token,
                        task_outcome outcome, callback<complete_info> done,
                        bool want_next) const {
  ask(router(), std::move(done), task_complete_atom::value,
      std::move(worker_id), std::move(token), std::move(outcome), want_next);
}

void task_api::unregister(std::string worker_id,
                          callback<std::uint32_t> done) const {
  ask(router(), std::move(done), task_leave_atom::value, std::move(worker_id));
}

void task_api::worker_lost(std::string worker_id, std::string reason) const {
  if (auto target = router())
    caf::anon_send(target, task_lost_atom::value, std::move(worker_id),
                   reason.empty() ? std::string{"disconnected"}
                                  : std::move(reason));
}

void task_api::list_dead_letters(std::string queue, std::size_t page_size,
                                 std::string page_token,
                                 callback<dead_letter_list> done) const {
  ask(router(), std::move(done), dlq_list_atom::value, std::move(queue),
      static_cast<std::uint64_t>(page_size), std::move(page_token));
}

void task_api::retry_dead_letter(std::int64_t id, operator_id who,
                                 callback<std::string> done) const {
  ask(router(), std::move(done), dlq_retry_atom::value, id, std::move(who.by),
      std::move(who.note));
}

} // namespace cerebelum::actors
