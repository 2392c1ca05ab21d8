#pragma once

// The front ends' side of src/auth: the credentials of a gRPC call or an
// HTTP request, checked against the permission table. Without an
// authenticator (a node without `--auth token`) every request is allowed
// and recorded under the name its caller gives.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <caf/error.hpp>

#include "actors/operator_id.hpp"
#include "src/auth/authenticator.hpp"
#include "src/auth/worker_owners.hpp"

namespace cerebelum::actors {
class engine_api;
struct execution_view;
struct workflow_owner_view;
} // namespace cerebelum::actors

namespace grpc {
class ServerContextBase;
} // namespace grpc

namespace cerebelum::api {

using authenticator_ptr = std::shared_ptr<auth::authenticator>;

/// A refusal as the engine's error (unauthenticated or permission_denied),
/// or nothing when `v` allows.
caf::error refusal(const auth::verdict& v);

/// Checks gRPC method `method` ("AdminService/Approve") for the call of
/// `ctx`: its `authorization` metadata, else the subject of its verified
/// client certificate. Null `auth`: allowed, no one.
auth::verdict check_call(const authenticator_ptr& auth,
                         grpc::ServerContextBase* ctx, std::string_view method,
                         const auth::request_scope& scope = {});

/// The subject (normal form, src/auth/cert_subject.hpp) of the verified
/// client certificate of the call of `ctx`, or "" when it showed none.
std::string client_subject(const grpc::ServerContextBase& ctx);

/// Who an event records: the authenticated principal `principal` when there
/// is one, with `typed` (the name the caller gave) as a note beside it
/// unless empty or the same; else `typed`.
actors::operator_id recorded_by(std::string_view principal,
                                const std::string& typed);
/// `recorded_by` for the principal of `v`.
actors::operator_id recorded_by(const auth::verdict& v,
                                const std::string& typed);

/// `cerebelum workflow transfer` over either transport, once the call was
/// allowed (`v`): moves `name` to the worker identity of the live worker or
/// admin token named `to`, recorded as replaced by the caller's identity
/// ("token 'NAME'"). Errors (the engine's): failed precondition
/// (`not_transferable`) on a node without tokens (`auth` null: workers are
/// then one identity and own no names of their own) or for a name of this
/// node's files, invalid_argument (`to` names no such token),
/// unknown_workflow, unavailable.
caf::expected<actors::workflow_owner_view>
transfer_workflow(const authenticator_ptr& auth, actors::engine_api& engine,
                  const auth::verdict& v, const std::string& name,
                  const std::string& to);

// -- workflow scopes ----------------------------------------------------------
//
// A token created with `--workflows W,..` touches only executions of those
// workflows: reads, decisions and dead letters of others are refused
// (permission_denied), lists show only them. `name` is the principal's name
// and `workflows` its scope (empty: every workflow, and nothing is read).

/// Refuses when the scope does not include `workflow`; `what` names what
/// the request touches ("execution 'X'").
caf::error scope_refusal(std::string_view name,
                         std::span<const std::string> workflows,
                         std::string_view workflow, std::string_view what);

/// The same for the execution `view` shows.
caf::error view_scope_refusal(std::string_view name,
                              std::span<const std::string> workflows,
                              const actors::execution_view& view);

/// The same for execution `id` (its workflow read from `engine` only when
/// the scope is not empty); an execution that cannot be read is refused
/// with the engine's error (not_found, unavailable).
caf::error execution_scope_refusal(actors::engine_api& engine,
                                   std::string_view name,
                                   std::span<const std::string> workflows,
                                   const std::string& id);

/// The same for dead letter `id` (the workflow of its execution).
caf::error dead_letter_scope_refusal(actors::engine_api& engine,
                                     std::string_view name,
                                     std::span<const std::string> workflows,
                                     std::int64_t id);

/// The workflow filter of a list: `asked` when the scope includes it (or
/// is empty); the scope's workflow when nothing was asked and it names one;
/// otherwise a refusal (a list covers one workflow at a time, so a token
/// scoped to several must name one).
caf::expected<std::optional<std::string>>
scoped_filter(std::string_view name, std::span<const std::string> workflows,
              std::optional<std::string> asked);

/// Whether the scope includes `workflow` (an empty scope includes all).
bool in_scope(std::span<const std::string> workflows,
              std::string_view workflow) noexcept;

/// The scope of `v`'s principal (empty without one).
std::span<const std::string> scope_of(const auth::verdict& v) noexcept;

/// The name of `v`'s principal ("" without one).
std::string_view name_of(const auth::verdict& v) noexcept;

using worker_owners_ptr = std::shared_ptr<auth::worker_owners>;

} // namespace cerebelum::api
