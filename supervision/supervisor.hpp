#pragma once

/// @file
/// OTP supervisors for CAF 0.17. Start here.
///
/// Example: a root supervisor with one permanent worker and a nested
/// simple_one_for_one supervisor of transient workers.
///
/// ```cpp
/// namespace sv = cerebelum::supervision;
///
/// void caf_main(caf::actor_system& sys, const config&) {
///   // config's constructor called sv::add_supervision_types(*this).
///   sv::supervisor_config executions{"executions_sup",
///     {sv::restart_strategy::simple_one_for_one, 10,
///     std::chrono::seconds{10}},
///     {{"execution", [](caf::actor_system& sys, const caf::message& args)
///         -> caf::expected<caf::actor> {
///         return sys.spawn(execution_actor, args.get_as<std::string>(0));
///       }, sv::restart_type::transient}}};
///   sv::supervisor_config root{"node_sup", {}, {
///     {"store_writer", [](caf::actor_system& sys, const caf::message&)
///         -> caf::expected<caf::actor> { return sys.spawn(store_writer); }},
///     sv::supervisor_spec("executions_sup", std::move(executions)),
///   }};
///   auto sup = sv::start_supervisor(sys, std::move(root)); // blocks
///   if (!sup) { /* names the child that failed to start */ }
///   caf::scoped_actor self{sys};
///   auto kids = sv::which_children(self, *sup); // in start order
///   auto exec_sup = kids->at(1).child;
///   auto child = sv::start_child(self, exec_sup,
///                                caf::make_message(std::string{"e-1"}));
///   // Graceful stop: children stop in reverse order, then the supervisor.
///   self->monitor(*sup);
///   caf::anon_send_exit(*sup, caf::exit_reason::user_shutdown);
///   self->receive([](const caf::down_msg&) {});
/// }
/// ```
///
/// Semantics (see docs/supervision.md):
/// - Children start in spec order and stop in reverse order. A start
///   function that fails makes the supervisor's start fail with
///   `errc::failed_to_start_child` naming the child, after the children
///   already started were stopped in reverse order.
/// - Exit reasons: none, `exit_reason::normal` and `exit_reason::user_shutdown`
///   are normal (OTP's normal/shutdown); everything else (kill,
///   unhandled_exception, sec::runtime_error, any error) is abnormal.
/// - More than `intensity` restarts within `period`: all children stop
///   (reverse order) and the supervisor exits with
///   `errc::reached_max_restart_intensity`, an abnormal reason for its parent.
/// - An exit message from an actor that is not a child (the parent's link,
///   `anon_send_exit`) with a reason other than normal stops all children
///   and then the supervisor with that reason.
/// - Keep a handle to the root supervisor: CAF kills an actor whose last
///   strong handle is dropped (`exit_reason::unreachable`).

#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/duration.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "supervision/child_spec.hpp"
#include "supervision/errc.hpp"
#include "supervision/messages.hpp"

namespace cerebelum::supervision {

// -- starting supervisors -----------------------------------------------------

/// Validates `cfg` and spawns a supervisor without waiting for its children:
/// it never blocks, so start functions of child specs may call it. Returns
/// a named `errc` error for an invalid config.
caf::expected<caf::actor> spawn_supervisor(caf::actor_system& sys,
                                           supervisor_config cfg);

/// Spawns a supervisor and blocks until all of its children are started.
/// On a failed start returns `errc::failed_to_start_child` (the supervisor
/// has stopped the started children and exited). For the root of a program;
/// never call it inside an actor.
caf::expected<caf::actor> start_supervisor(caf::actor_system& sys,
                                           supervisor_config cfg);

/// Returns a child spec that starts a nested supervisor: type supervisor,
/// shutdown infinity. The parent's start waits until the nested supervisor
/// started all of its children.
child_spec supervisor_spec(std::string id, supervisor_config cfg,
                           restart_type restart = restart_type::permanent);

// -- blocking operations (caf::scoped_actor) ----------------------------------

/// Starts and supervises a new static child (not simple_one_for_one).
/// Errors: already_started, already_present, failed_to_start_child, spec
/// validation errors, simple_one_for_one. An invalid handle means `ignore`.
caf::expected<caf::actor> start_child(caf::scoped_actor& self,
                                      const caf::actor& sup, child_spec spec,
                                      caf::duration timeout = caf::infinite);

/// Starts a simple_one_for_one child with `args` passed to the template's
/// start function. Errors: failed_to_start_child, not_simple_one_for_one.
caf::expected<caf::actor> start_child(caf::scoped_actor& self,
                                      const caf::actor& sup, caf::message args,
                                      caf::duration timeout = caf::infinite);

/// Stops the child `id` by its shutdown policy and keeps its spec (a
/// temporary child's spec is removed). Errors: not_found, simple_one_for_one.
caf::error terminate_child(caf::scoped_actor& self, const caf::actor& sup,
                           const std::string& id,
                           caf::duration timeout = caf::infinite);

/// Stops the simple_one_for_one child `child` and forgets it.
/// Errors: not_found, not_simple_one_for_one.
caf::error terminate_child(caf::scoped_actor& self, const caf::actor& sup,
                           const caf::actor& child,
                           caf::duration timeout = caf::infinite);

/// Starts the terminated child `id` again. Errors: running, restarting,
/// not_found, failed_to_start_child, simple_one_for_one.
caf::expected<caf::actor>
restart_child(caf::scoped_actor& self, const caf::actor& sup,
              const std::string& id, caf::duration timeout = caf::infinite);

/// Removes the spec of the terminated child `id`. Errors: running,
/// restarting, not_found, simple_one_for_one.
caf::error delete_child(caf::scoped_actor& self, const caf::actor& sup,
                        const std::string& id,
                        caf::duration timeout = caf::infinite);

/// Lists the children (start order for static supervisors).
caf::expected<std::vector<child_info>>
which_children(caf::scoped_actor& self, const caf::actor& sup,
               caf::duration timeout = caf::infinite);

/// Counts specs, running children, supervisors and workers.
caf::expected<child_counts>
count_children(caf::scoped_actor& self, const caf::actor& sup,
               caf::duration timeout = caf::infinite);

// -- non-blocking operations (event-based actors) -----------------------------

/// Sends `start_child(args)` to a simple_one_for_one supervisor from an
/// event-based actor; continue with `.then([](caf::actor& child) {...},
/// [](caf::error& err) {...})`.
template <class Self>
auto request_start_child(Self* self, const caf::actor& sup, caf::message args,
                         caf::duration timeout = caf::infinite) {
  return self->request(sup, timeout, start_child_atom_v, std::move(args));
}

/// Sends `terminate_child(child)` to a simple_one_for_one supervisor;
/// continue with `.then([] {...}, [](caf::error& err) {...})`.
template <class Self>
auto request_terminate_child(Self* self, const caf::actor& sup,
                             const caf::actor& child,
                             caf::duration timeout = caf::infinite) {
  return self->request(sup, timeout, terminate_child_atom_v, child);
}

/// Sends `which_children` from an event-based actor; continue with
/// `.then([](std::vector<child_info>& xs) {...}, ...)`.
template <class Self>
auto request_which_children(Self* self, const caf::actor& sup,
                            caf::duration timeout = caf::infinite) {
  return self->request(sup, timeout, which_children_atom_v);
}

} // namespace cerebelum::supervision
