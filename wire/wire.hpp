#pragma once

// The worker protocol on the node's CAF worker port (caf::io). The messages
// are the generated classes of proto/worker.proto, declared there once for
// gRPC and CAF alike; each request is one CAF message whose reply is the
// matching response, or a `caf::error` of category `error_category`:
//
// ```
//  worker                                          node (worker_gateway)
//    | -- remote_actor(host, port) --------------------> (published actor)
//    | -- RegisterRequest ------------------------------> monitor(sender)
//    | <----------------------------- RegisterResponse
//    | <------------------------------------------ Task   pushed, up to
//    | -- HeartbeatRequest -----------------------------> max_in_flight
//    | <---------------------------- HeartbeatResponse    leased at once
//    | -- CompleteTaskRequest --------------------------->
//    | <------------------------- CompleteTaskResponse    (or stale_attempt)
//    | -- DrainRequest ---------------------------------> no more pushes
//    | <-------------------------------- DrainResponse
//    | -- UnregisterRequest ----------------------------> leases handed back
//    | <--------------------------- UnregisterResponse
//    X  process dies: down_msg at the gateway -> its leases re-queued at once
// ```
//
// On the wire each message is its protobuf encoding as one CAF string, at
// most `max_message_bytes`; bytes that do not parse fail the CAF
// deserialization with `errc::malformed_message`. Both sides call
// `add_wire_types` before creating their actor system.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/serializer.hpp>
#include <caf/type_id.hpp>

#include "proto/worker.pb.h"

namespace cerebelum::wire {

/// Largest protobuf encoding of one message on the CAF port. A task's JSON
/// texts are at most 1 MiB each (actors/task_api.hpp); gRPC takes 4 MiB.
inline constexpr std::size_t max_message_bytes = 4 * 1024 * 1024;

/// Error codes of the CAF port (category `error_category`).
enum class errc : std::uint8_t {
  /// Not an error.
  none = 0,
  /// A malformed request: empty worker id or queue, malformed JSON, an
  /// invalid workflow definition (the context names the problem).
  invalid_argument,
  /// The worker id is not registered (or registered by another actor).
  unknown_worker,
  /// The attempt token is not leased to this worker (the lease expired, the
  /// step timed out or the execution ended): the result is rejected.
  stale_attempt,
  /// Another live worker actor registered this worker id.
  already_registered,
  /// The node is shutting down or its store is down; retry later.
  unavailable,
  /// The node could not be reached or the connection was lost.
  connection_lost,
  /// A bug or an unexpected failure; the context says what.
  internal,
  /// Bytes on the wire that are not a message of this protocol: they do not
  /// parse or exceed `max_message_bytes`.
  malformed_message,
  /// The node requires a token (`--auth token`) and the registration
  /// carried none, or an unknown, expired or revoked one.
  unauthenticated,
  /// The token's role or queue scopes do not allow this worker.
  permission_denied,
  /// The worker asks for more tasks in flight than its principal may hold
  /// waiting requests (`--max-waits-per-principal`, with what it holds
  /// already); the context says how many.
  resource_exhausted,
};

/// The CAF error category of `errc`.
constexpr caf::atom_value error_category = caf::atom("cafworker");

/// Returns the enumerator name of `x`, e.g. "stale_attempt".
std::string to_string(errc x);

/// Wraps `x` and a human-readable context into a `caf::error`.
caf::error make_error(errc x, std::string context);

/// The `errc` of `err` (`errc::internal` for other categories).
errc error_code(const caf::error& err);

/// "stale_attempt: attempt token ... is not leased to worker w1" for errors
/// of this protocol; the system's rendering otherwise.
std::string render_error(caf::actor_system& sys, const caf::error& err);

/// Parses `bytes` into `x`; fails with `malformed_message` naming the type
/// when they exceed `max_message_bytes` or do not parse.
caf::error decode(google::protobuf::MessageLite& x, const std::string& bytes);

/// Serializes `x` into `out`; fails with `malformed_message` when its
/// encoding would exceed `max_message_bytes`.
caf::error encode(const google::protobuf::MessageLite& x, std::string& out);

/// Registers the message types and the error category of the CAF port in
/// `cfg`. The node and every worker call it before creating the
/// `caf::actor_system`.
void add_wire_types(caf::actor_system_config& cfg);

/// The CAF type names of the `cerebelum_wire` type id block, e.g.
/// "cerebelum::worker::Task": what a peer's messages may hold.
std::set<std::string, std::less<>> type_names();

} // namespace cerebelum::wire

namespace cerebelum::worker {

/// Every generated message of worker.proto is inspected as one string: its
/// protobuf bytes (serializers), or its text format (to_string).
template <class Inspector, class T>
std::enable_if_t<std::is_base_of_v<google::protobuf::Message, T>,
                 typename Inspector::result_type>
inspect(Inspector& f, T& x) {
  auto name = caf::meta::type_name(T::descriptor()->full_name().c_str());
  if constexpr (Inspector::writes_state) {
    std::string bytes;
    return f(name, bytes, caf::meta::load_callback([&]() -> caf::error {
               return wire::decode(x, bytes);
             }));
  } else if constexpr (std::is_base_of_v<caf::serializer, Inspector>) {
    std::string bytes;
    if (auto err = wire::encode(x, bytes)) return err;
    return f(name, bytes);
  } else {
    auto text = x.ShortDebugString();
    return f(name, text);
  }
}

} // namespace cerebelum::worker

// The wire owns ids [first_custom_type_id + 150, + 200): the supervision
// module starts at first_custom_type_id, the actors module at + 50.
CAF_BEGIN_TYPE_ID_BLOCK(cerebelum_wire, caf::first_custom_type_id + 150)

CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::RegisterRequest))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::RegisterResponse))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::Task))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::HeartbeatRequest))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::HeartbeatResponse))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::CompleteTaskRequest))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::CompleteTaskResponse))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::DrainRequest))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::DrainResponse))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::UnregisterRequest))
CAF_ADD_TYPE_ID(cerebelum_wire, (cerebelum::worker::UnregisterResponse))

CAF_END_TYPE_ID_BLOCK(cerebelum_wire)

static_assert(caf::id_block::cerebelum_wire::end
                <= caf::first_custom_type_id + 200,
              "the wire owns at most 50 type ids");
