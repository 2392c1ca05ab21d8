#pragma once

// The front ends' side of src/auth: the credentials of a gRPC call or an
// HTTP request, checked against the permission table. Without an
// authenticator (a node without `--auth token`) every request is allowed
// and recorded under the name its caller gives.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <caf/error.hpp>

#include "src/auth/authenticator.hpp"
#include "src/auth/worker_owners.hpp"

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

/// Who an event records: the authenticated principal when there is one,
/// else `typed` (the name the caller gave).
std::string recorded_by(const auth::verdict& v, const std::string& typed);

using worker_owners_ptr = std::shared_ptr<auth::worker_owners>;

} // namespace cerebelum::api
