#pragma once

// Message vocabulary of a supervisor. Every request below is answered; an
// operation that fails answers with a `caf::error` of category "supervise"
// (see errc.hpp).
//
// | request                                 | reply                       |
// |-----------------------------------------|-----------------------------|
// | (start_child_atom, child_spec)          | caf::actor (invalid: ignore)|
// | (start_child_atom, caf::message args)   | caf::actor (simple only)    |
// | (terminate_child_atom, std::string id)  | void                        |
// | (terminate_child_atom, caf::actor)      | void (simple only)          |
// | (restart_child_atom, std::string id)    | caf::actor                  |
// | (delete_child_atom, std::string id)     | void                        |
// | (which_children_atom)                   | std::vector<child_info>     |
// | (count_children_atom)                   | child_counts                |
// | (await_started_atom)                    | void, once all children of  |
// |                                         | the initial spec are started|

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include "supervision/child_spec.hpp"

namespace cerebelum::supervision {

/// Whether a child listed by `which_children` has a process.
enum class child_status : uint8_t {
  /// The child runs; `child_info::child` is its handle.
  running,
  /// A restart attempt failed; the supervisor retries.
  restarting,
  /// No process: a transient child that exited normally, a terminated child
  /// or a start function that returned `ignore`.
  undefined,
};

/// One entry of `which_children` (OTP's `{Id, Child, Type, Modules}`).
struct child_info {
  /// The spec id (simple_one_for_one: the template's id).
  std::string id;
  /// The handle while running, invalid otherwise.
  caf::actor child;
  child_status status = child_status::undefined;
  child_type type = child_type::worker;
};

/// @relates child_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_info& x) {
  return f(caf::meta::type_name("child_info"), x.id, x.child, x.status, x.type);
}

/// Reply of `count_children` (OTP's proplist).
struct child_counts {
  /// Number of child specs (simple_one_for_one: 1).
  size_t specs = 0;
  /// Number of running children.
  size_t active = 0;
  /// Number of children of type supervisor, running or not.
  size_t supervisors = 0;
  /// Number of children of type worker, running or not.
  size_t workers = 0;
};

/// @relates child_counts
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_counts& x) {
  return f(caf::meta::type_name("child_counts"), x.specs, x.active,
           x.supervisors, x.workers);
}

/// Registers the message types and the error category of this library in
/// `cfg`. Every program that runs supervisors must call it before creating
/// its `caf::actor_system`.
void add_supervision_types(caf::actor_system_config& cfg);

} // namespace cerebelum::supervision

// This block uses 3 of the 50 ids reserved for the supervision module;
// the actors module starts at caf::first_custom_type_id + 50.
CAF_BEGIN_TYPE_ID_BLOCK(cerebelum_supervision, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(cerebelum_supervision, (cerebelum::supervision::child_info))
CAF_ADD_TYPE_ID(cerebelum_supervision,
                (std::vector<cerebelum::supervision::child_info>))
CAF_ADD_TYPE_ID(cerebelum_supervision, (cerebelum::supervision::child_counts))

CAF_ADD_ATOM(cerebelum_supervision, cerebelum::supervision, start_child_atom,
             "startchild")
CAF_ADD_ATOM(cerebelum_supervision, cerebelum::supervision,
             terminate_child_atom, "termchild")
CAF_ADD_ATOM(cerebelum_supervision, cerebelum::supervision, restart_child_atom,
             "restartchd")
CAF_ADD_ATOM(cerebelum_supervision, cerebelum::supervision, delete_child_atom,
             "deletechld")
CAF_ADD_ATOM(cerebelum_supervision, cerebelum::supervision, which_children_atom,
             "whichchild")
CAF_ADD_ATOM(cerebelum_supervision, cerebelum::supervision, count_children_atom,
             "countchild")
CAF_ADD_ATOM(cerebelum_supervision, cerebelum::supervision, await_started_atom,
             "awaitstart")

CAF_END_TYPE_ID_BLOCK(cerebelum_supervision)

static_assert(caf::id_block::cerebelum_supervision::end
                <= caf::first_custom_type_id + 50,
              "the supervision module owns at most 50 type ids");
