#include "src/auth/worker_owners.hpp"

namespace cerebelum::auth {

std::string worker_identity(const principal& who) {
  return "token '" + who.name + "'";
}

transfer_target
find_transfer_target(const std::vector<eventstore::token_row>& rows,
                     std::string_view name, std::int64_t now_ms) {
  const std::string shown = "'" + std::string{name} + "'";
  bool named = false;
  for (const auto& row : rows) {
    if (row.name != name) continue;
    named = true;
    if (row.revoked_at_ms != 0
        || (row.expires_at_ms != 0 && row.expires_at_ms <= now_ms))
      continue;
    auto r = parse_role(row.role);
    if (r && (*r == role::worker || *r == role::admin)) {
      principal who;
      who.name = row.name;
      return {worker_identity(who), {}};
    }
  }
  if (!named)
    return {{}, "to: no token is named " + shown + " (cerebelum token list)"};
  return {{},
          "to: no live token of role worker or admin is named " + shown
            + " (only those register workers)"};
}

std::optional<std::string> worker_owners::admit(const std::string& worker,
                                                const principal& who,
                                                bool claim) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = owners_.find(worker);
  if (i == owners_.end()) {
    if (claim) owners_.emplace(worker, who.token_id);
    return std::nullopt;
  }
  if (i->second == who.token_id) return std::nullopt;
  return "worker '" + worker + "' was registered with another token: token '"
         + who.name + "' may not act for it";
}

void worker_owners::release(const std::string& worker) {
  std::lock_guard<std::mutex> guard{mtx_};
  owners_.erase(worker);
}

} // namespace cerebelum::auth
