#pragma once

// Which token registered each worker id, shared by the node's worker front
// ends (gRPC and the CAF port): a worker id belongs to the token that
// registered it first, until it unregisters, whichever way it connects, so
// that no other token can act for it (docs/security.md).

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/auth/authenticator.hpp"

namespace cerebelum::auth {

/// The identity a worker's workflow definitions belong to
/// (engine_context::register_definitions; recorded in the store):
/// "token 'NAME'", the principal's name, so that a new token of the same
/// name (a rotated one) keeps its workflows.
std::string worker_identity(const principal& who);

/// Where a transfer of a workflow name goes (`cerebelum workflow transfer
/// NAME --to TOKEN_NAME`): the worker identity of the principal named
/// `name`, which must be live (not revoked, not expired at `now_ms`) and
/// of a role that registers workers (worker or admin) among `rows` (the
/// store's tokens); else `refusal` says why.
struct transfer_target {
  std::string identity;
  std::string refusal;
};
transfer_target
find_transfer_target(const std::vector<eventstore::token_row>& rows,
                     std::string_view name, std::int64_t now_ms);

class worker_owners {
 public:
  /// Checks that `who` may act for `worker`; `claim` (a registration) binds
  /// an unbound id to `who`. Nothing, or why not.
  std::optional<std::string> admit(const std::string& worker,
                                   const principal& who, bool claim);

  /// Unbinds `worker` (it unregistered).
  void release(const std::string& worker);

 private:
  std::mutex mtx_;
  /// Worker id -> id of the token that registered it.
  std::unordered_map<std::string, std::string> owners_;
};

} // namespace cerebelum::auth
