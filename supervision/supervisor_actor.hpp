#pragma once

// Internal: the supervisor actor. Users include supervision/supervisor.hpp.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/system_messages.hpp>

#include "supervision/child_spec.hpp"
#include "supervision/messages.hpp"
#include "supervision/restart_intensity.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace cerebelum::supervision::detail {

/// Internal: retries a restart that failed (OTP's try_again_restart).
using try_again_atom = caf::atom_constant<caf::atom("tryrestart")>;
constexpr try_again_atom try_again_atom_v = try_again_atom{};

/// Internal: the shutdown timeout of a child (or of all dynamic children).
using stop_timer_atom = caf::atom_constant<caf::atom("stoptimer")>;
constexpr stop_timer_atom stop_timer_atom_v = stop_timer_atom{};

/// An OTP supervisor. States (one behavior each, switched by `enter`):
///
/// ```
///   spawn --> starting --all started--> running <-----------+
///                |                        |  |               |
///                | a start failed         |  | restart needs |
///                v                        |  v siblings down | job done
///             stopping --> quit(failed_   |  stopping -------+
///                           to_start)     |
///                                         | intensity exceeded, exit from
///                                         v outside (parent, user)
///                                      stopping (all) --> quit(reason)
/// ```
///
/// Children are monitored, not linked: in CAF 0.17 an exit message with
/// reason `kill` that arrives over a link kills the receiver even when it
/// traps exits, so a killed child would take its supervisor down. Instead,
/// a supervisor that dies abruptly sends its exit reason to the children
/// left (see `make_behavior`). The supervisor traps exits: an exit message
/// (from a parent or a user) starts an orderly shutdown. While `starting` or
/// `stopping`, requests are postponed (skipped) and down messages of
/// children that are not part of the current job are deferred to `running`.
class supervisor_actor : public caf::event_based_actor {
 public:
  supervisor_actor(caf::actor_config& cfg, supervisor_config sup_cfg);

  caf::behavior make_behavior() override;

  const char* name() const override;

 private:
  enum class phase : uint8_t { starting, running, stopping };

  struct static_child {
    child_spec spec;
    caf::actor handle;
    bool restarting = false;
  };

  struct dynamic_child {
    caf::actor handle;
    /// Empty for temporary children (never restarted, as OTP).
    caf::message args;
  };

  /// A child to stop and how.
  using stop_entry = std::pair<caf::actor, shutdown_policy>;

  /// Children to stop one after the other (or all dynamic children at
  /// once), then a continuation.
  struct stop_job {
    std::vector<stop_entry> queue; // next child at the back
    caf::actor current;
    bool all_dynamic = false;
    std::function<void()> then;
  };

  // -- phases (supervisor_actor.cpp) ------------------------------------------

  void enter(phase next);
  caf::behavior starting_behavior();
  caf::behavior stopping_behavior();
  void on_down(caf::down_msg& x);
  void on_running_down(caf::down_msg& x);
  void on_external_exit(caf::exit_msg& x);
  void on_abrupt_exit(const caf::error& reason);
  void drain_deferred();

  // -- starting and restarting (supervisor_start.cpp) -------------------------

  void start_initial(size_t first);
  void await_child_start(size_t index);
  void initial_start_failed(size_t index, caf::error reason);
  caf::error start_static(static_child& child);
  caf::expected<caf::actor> start_dynamic(caf::message args);
  void static_child_exited(size_t index, const caf::error& reason);
  void dynamic_child_exited(caf::actor_id id, const caf::error& reason);
  void restart_static(size_t index);
  void restart_dynamic(caf::message args);
  void start_without_process(size_t first, const std::string& cause);
  void give_up(const std::string& child_id);
  caf::expected<caf::actor> call_start(const child_spec& spec,
                                       const caf::message& args);
  caf::error start_failure(const std::string& id, const caf::error& reason);

  // -- stopping (supervisor_stop.cpp) -----------------------------------------

  void stop_children(std::vector<stop_entry> order, std::function<void()> then);
  void stop_all_dynamic(std::function<void()> then);
  void stop_next();
  void stop_one(const caf::actor& child, const shutdown_policy& policy);
  void on_stopping_down(caf::down_msg& x);
  void on_stop_timeout(uint64_t generation);
  void finish_job();
  void shutdown(caf::error reason);
  void terminate_self(caf::error reason);
  std::vector<stop_entry> running_from(size_t first) const;
  void forget_stopped(const caf::actor_addr& who);

  // -- operations (supervisor_ops.cpp) ----------------------------------------

  caf::behavior running_behavior();
  caf::result<caf::actor> op_start_child(child_spec& spec);
  caf::result<caf::actor> op_start_dynamic(caf::message& args);
  caf::result<void> op_terminate_child(const std::string& id);
  caf::result<void> op_terminate_dynamic(const caf::actor& child);
  caf::result<caf::actor> op_restart_child(const std::string& id);
  caf::result<void> op_delete_child(const std::string& id);
  std::vector<child_info> op_which_children() const;
  child_counts op_count_children() const;
  void on_try_again(const std::string& id);

  // -- lookup -----------------------------------------------------------------

  static_child* find_static(const std::string& id);
  ptrdiff_t index_of(const caf::actor_addr& addr) const;
  bool simple() const noexcept {
    return strategy_ == restart_strategy::simple_one_for_one;
  }

  // -- state ------------------------------------------------------------------

  std::string name_;
  restart_strategy strategy_;
  std::shared_ptr<spdlog::logger> log_;
  restart_intensity intensity_;
  phase phase_ = phase::starting;

  /// Whether all children of the initial spec have been started.
  bool started_ = false;

  /// Static children in start order (not simple_one_for_one).
  std::vector<static_child> children_;

  /// The template of a simple_one_for_one supervisor.
  child_spec template_;

  /// Running dynamic children, found by actor id in O(1).
  std::unordered_map<caf::actor_id, dynamic_child> dynamic_;

  /// Arguments of dynamic children whose restart failed and will be retried.
  std::deque<caf::message> dynamic_retries_;

  /// Requests of `await_started_atom` received while starting.
  std::vector<caf::response_promise> start_waiters_;

  /// Index of the supervisor child whose start we await, or -1.
  ptrdiff_t awaiting_ = -1;

  stop_job job_;
  bool job_active_ = false;
  bool quitting_ = false;
  uint64_t stop_generation_ = 0;

  /// Down messages of children not involved in the current job, handled
  /// later.
  std::deque<caf::down_msg> deferred_;

  /// Set when an exit from outside arrives while a job runs.
  caf::error pending_exit_;
  bool exit_pending_ = false;
};

} // namespace cerebelum::supervision::detail
