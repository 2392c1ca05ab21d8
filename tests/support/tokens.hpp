#pragma once

// Tokens for tests against a real node with `--auth token`
// (docs/security.md): its first admin token and `cerebelum token create`.

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/auth/token.hpp"

namespace cerebelum::test {

/// The first line of file `p` (e.g. DATA_DIR/admin.token).
inline std::string first_line(const std::filesystem::path& p) {
  std::ifstream in{p};
  std::string line;
  std::getline(in, line);
  return line;
}

/// The CLI arguments that make token `name` with `role` (and `extra`
/// options such as --queues) as JSON.
inline std::vector<std::string>
token_create_args(const std::string& name, const std::string& role,
                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"token",  "create", "--name", name,
                                "--role", role,     "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// {id, secret} of `token create --json`'s output; fails the test unless
/// the command succeeded.
inline std::pair<std::string, std::string>
created_token(int code, const std::string& output) {
  INFO(output);
  REQUIRE(code == 0);
  auto j = nlohmann::json::parse(output);
  return {j["token"]["id"].get<std::string>(), j["secret"].get<std::string>()};
}

/// The tokens a walk of the permission table presents: one of each role,
/// one past its expiry and one revoked.
struct walk_tokens {
  std::map<auth::role, std::string> by_role;
  std::string expired;
  std::string revoked;
};

/// Makes `walk_tokens` with `make(name, role, extra)` -> {id, secret} and
/// `revoke(id)`; the expired and revoked ones have role `role`. Returns
/// once the expired one is past its time.
template <class Make, class Revoke>
walk_tokens
make_walk_tokens(Make make, Revoke revoke, const std::string& role) {
  walk_tokens t;
  for (auto r : {auth::role::admin, auth::role::operator_, auth::role::starter,
                 auth::role::reader, auth::role::worker})
    t.by_role[r] = make(std::string{"t-"} + std::string{auth::to_string(r)},
                        std::string{auth::to_string(r)},
                        std::vector<std::string>{})
                     .second;
  t.expired = make("t-expired", role, {"--expires", "1s"}).second;
  auto [revoked_id, revoked] = make("t-revoked", role, {});
  revoke(revoked_id);
  t.revoked = revoked;
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  return t;
}

} // namespace cerebelum::test
