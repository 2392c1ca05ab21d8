#include "src/auth/worker_owners.hpp"

namespace cerebelum::auth {

std::string worker_identity(const principal& who) {
  return "token '" + who.name + "'";
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
