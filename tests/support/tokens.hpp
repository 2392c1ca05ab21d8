#pragma once

// Tokens for tests against a real node with `--auth token`
// (docs/security.md): its first admin token and `cerebelum token create`.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

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

} // namespace cerebelum::test
