// Security of the CAF worker port against the real node and the real
// example worker (docs/security.md): the permission table's CAF entries
// walked with tokens of every kind, queue scopes, worker ids bound to the
// token that registered them, revocation ending a session, and TLS with
// client certificates in front of libcaf_io.

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include "src/auth/permissions.hpp"
#include "tests/cafworkers/caf_fixture.hpp"
#include "tests/support/tokens.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
namespace auth = cerebelum::auth;

namespace {

/// A node with `--auth token` (and `extra` args) and its admin token;
/// `client` goes before every CLI call's arguments (e.g. --tls-ca).
struct secured_caf_node {
  explicit secured_caf_node(std::vector<std::string> extra = {},
                            std::vector<std::string> client_args = {})
    : node(with_tokens(std::move(extra))),
      admin(first_line(node.data_dir() / "admin.token")),
      client(std::move(client_args)) {
    client.insert(client.end(), {"--token", admin});
  }

  /// The CLI against the node as its admin.
  std::pair<int, std::string> cli(std::vector<std::string> args) {
    args.insert(args.begin(), client.begin(), client.end());
    return node.cli(args);
  }

  static std::vector<std::string> with_tokens(std::vector<std::string> extra) {
    extra.insert(extra.begin(), {"--auth", "token"});
    return extra;
  }

  /// Makes a token; returns {id, secret}.
  std::pair<std::string, std::string>
  make(const std::string& name, const std::string& role,
       const std::vector<std::string>& extra = {}) {
    auto [code, out] = cli(token_create_args(name, role, extra));
    return created_token(code, out);
  }

  caf_node node;
  std::string admin;
  std::vector<std::string> client;
};

/// Whether the node's output holds `text` within `timeout`.
bool logged(caf_node& node, const std::string& text,
            std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    node.process().wait_for_line("\x01 never printed", 50ms);
    if (node.process().output().find(text) != std::string::npos) return true;
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

/// How a worker's attempt to join ended.
struct join_result {
  bool registered = false;
  std::string output;
};

/// Runs the example worker as `id` with `args` until it registers (then
/// stops it) or exits.
join_result try_join(caf_node& node, const std::string& id,
                     std::vector<std::string> args,
                     bool with_workflow = false) {
  args.insert(args.end(), {"--connect-timeout-ms", "3000"});
  auto proc = spawn_worker(node, id, std::move(args), with_workflow);
  join_result res;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (proc->wait_for_line("registered (queues", 100ms)) {
      res.registered = true;
      proc->kill_hard();
      break;
    }
    if (proc->wait_exit(1ms)) break;
  }
  res.output = proc->output();
  return res;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("the CAF worker port refuses a registration without a token, "
          "with an unknown, expired or revoked token or a role without "
          "the permission, and admits the roles the table names") {
  secured_caf_node s;
  auto walk = make_walk_tokens(
    [&](const std::string& name, const std::string& role,
        const std::vector<std::string>& extra) {
      return s.make(name, role, extra);
    },
    [&](const std::string& id) {
      REQUIRE(s.cli({"token", "revoke", id}).first == 0);
    },
    "worker");
  const auto& tokens = walk.by_role;
  const auto& expired = walk.expired;
  const auto& revoked = walk.revoked;
  std::size_t walked = 0;
  int n = 0;
  for (const auto& e : auth::endpoints()) {
    if (e.surface != "caf") continue;
    INFO(e.name);
    REQUIRE(e.name == "WorkerGateway/Register"); // the only token-bearing one
    auto join = [&](const std::string& token) {
      std::vector<std::string> args;
      if (!token.empty()) args = {"--token", token};
      return try_join(s.node, "w-" + std::to_string(++n), args);
    };
    for (const auto& bad :
         {std::string{}, "cbm_0000000000000000_" + std::string(64, '0'),
          expired, revoked}) {
      auto r = join(bad);
      INFO(r.output);
      CHECK_FALSE(r.registered);
      CHECK(contains(r.output, "unauthenticated"));
    }
    for (const auto& [r, token] : tokens) {
      INFO("role " << auth::to_string(r));
      auto res = join(token);
      INFO(res.output);
      if (auth::allows(r, e.needs)) {
        CHECK(res.registered);
      } else {
        CHECK_FALSE(res.registered);
        CHECK(contains(res.output, "permission_denied"));
      }
    }
    ++walked;
  }
  CHECK(walked == 1);
  // The node refused them all and is still serving.
  auto ok = try_join(s.node, "w-after",
                     {"--token", tokens.at(auth::role::worker)});
  CHECK(ok.registered);
}

TEST_CASE("a CAF worker's token is scoped to its queues, and a worker id "
          "belongs to the token that registered it") {
  secured_caf_node s;
  auto scoped = s.make("only-payments", "worker", {"--queues", "payments"});
  auto refused = try_join(s.node, "w-scoped", {"--token", scoped.second});
  INFO(refused.output);
  CHECK_FALSE(refused.registered);
  CHECK(contains(refused.output, "permission_denied"));

  auto first = s.make("invoicer-a", "worker", {"--queues", "cpp-invoices"});
  auto second = s.make("invoicer-b", "worker");
  // A registers invoicer-1 and dies without unregistering: the id stays A's.
  auto a = try_join(s.node, "invoicer-1", {"--token", first.second});
  INFO(a.output);
  REQUIRE(a.registered);
  auto b = try_join(s.node, "invoicer-1", {"--token", second.second});
  INFO(b.output);
  CHECK_FALSE(b.registered);
  CHECK(contains(b.output, "registered with another token"));
  auto again = try_join(s.node, "invoicer-1", {"--token", first.second});
  CHECK(again.registered);
}

TEST_CASE("a workflow a worker defines belongs to its token: the same token "
          "under a new worker id deploys it, another token may not") {
  secured_caf_node s;
  auto team_a = s.make("team-a", "worker").second;
  auto team_b = s.make("team-b", "worker").second;
  temp_dir dir;
  auto changed = dir.path / "invoice-v2.yaml";
  {
    std::ifstream in{CAF_WORKER_WORKFLOW};
    std::string text{std::istreambuf_iterator<char>{in}, {}};
    auto at = text.find("version: \"1\"");
    REQUIRE(at != std::string::npos);
    text.replace(at, 12, "version: \"2\"");
    std::ofstream{changed} << text;
  }
  auto first = try_join(s.node, "inv-a-1", {"--token", team_a}, true);
  INFO(first.output);
  REQUIRE(first.registered); // then killed: no unregister
  // The same deployment restarted as a new process under a new id.
  auto restarted = try_join(s.node, "inv-a-2", {"--token", team_a}, true);
  INFO(restarted.output);
  CHECK(restarted.registered);
  auto other = try_join(s.node, "inv-b-1",
                        {"--token", team_b, "--workflow", changed.string()});
  INFO(other.output);
  CHECK_FALSE(other.registered);
  CHECK(contains(other.output, "is defined by token 'team-a'"));
  auto deploy = try_join(s.node, "inv-a-3",
                         {"--token", team_a, "--workflow", changed.string()});
  INFO(deploy.output);
  CHECK(deploy.registered);
}

TEST_CASE("revoking a CAF worker's token ends its session within seconds") {
  secured_caf_node s;
  auto [id, secret] = s.make("short-lived", "worker");
  auto worker = spawn_worker(s.node, "w-revoked", {"--token", secret});
  auto joined = worker->wait_for_line("registered (queues", 30s);
  INFO(worker->output());
  REQUIRE(joined);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(s.cli({"token", "revoke", id}).first == 0);
  auto code = worker->wait_exit(20s);
  auto took = std::chrono::steady_clock::now() - t0;
  INFO(worker->output());
  REQUIRE(code);
  CHECK(*code != 0);
  CHECK(contains(worker->output(), "the token was revoked"));
  CHECK(took < 12s);
  CHECK(logged(s.node, "CAF worker w-revoked dropped", 1s));
}

TEST_CASE("a TLS CAF port runs a worker with a certificate of the client CA "
          "and refuses a foreign CA, a foreign client certificate, a "
          "wrong name and plain BASP") {
  temp_dir dir;
  auto certs = dir.path / "certs";
  auto other = dir.path / "other";
  for (const auto& d : {certs, other}) {
    child_process gen{{CEREBELUM_BIN, "dev-certs", d.string()}};
    REQUIRE(gen.wait_exit(60s) == 0);
  }
  auto pem = [](const std::filesystem::path& d, const char* f) {
    return (d / f).string();
  };
  secured_caf_node s{
    {"--tls-cert", pem(certs, "node.pem"), "--tls-key", pem(certs, "node.key"),
     "--tls-client-ca", pem(certs, "ca.pem")},
    {"--tls-ca", pem(certs, "ca.pem"), "--tls-cert", pem(certs, "client.pem"),
     "--tls-key", pem(certs, "client.key")}};
  CHECK(
    logged(s.node, "TLS, client certificates required, tokens required", 1s));
  auto token = s.make("invoicer", "worker").second;
  std::vector<std::string> good{"--token",    token,
                                "--tls-ca",   pem(certs, "ca.pem"),
                                "--tls-cert", pem(certs, "client.pem"),
                                "--tls-key",  pem(certs, "client.key")};

  auto worker = spawn_worker(s.node, "tls-1", good, true);
  auto joined = worker->wait_for_line("registered (queues", 30s);
  INFO(worker->output());
  REQUIRE(joined);
  auto [code, out] = s.cli(
    {"start", "caf_invoice", "--id", "inv-tls", "--wait", "--input",
     R"({"items": [{"sku": "a", "qty": 2, "price_cents": 150}, )"
     R"({"sku": "b", "qty": 1, "price_cents": 1000}], "tax_rate": 0.2, )"
     R"("work_ms": 0, "send_after_ms": 0})"});
  INFO(out);
  CHECK(code == 0);
  CHECK(contains(out, "completed"));
  worker->kill_hard();

  auto with = [&](std::vector<std::string> changes) {
    auto args = good;
    for (std::size_t i = 0; i + 1 < changes.size(); i += 2)
      for (std::size_t j = 0; j + 1 < args.size(); j += 2)
        if (args[j] == changes[i]) args[j + 1] = changes[i + 1];
    for (std::size_t i = 0; i + 1 < changes.size(); i += 2)
      if (std::find(args.begin(), args.end(), changes[i]) == args.end())
        args.insert(args.end(), {changes[i], changes[i + 1]});
    return args;
  };
  auto foreign_ca = try_join(s.node, "tls-2",
                             with({"--tls-ca", pem(other, "ca.pem")}));
  INFO(foreign_ca.output);
  CHECK_FALSE(foreign_ca.registered);
  CHECK(contains(foreign_ca.output, "does not verify"));

  auto foreign_cert = try_join(s.node, "tls-3",
                               with({"--tls-cert", pem(other, "client.pem"),
                                     "--tls-key", pem(other, "client.key")}));
  INFO(foreign_cert.output);
  CHECK_FALSE(foreign_cert.registered);
  CHECK(contains(foreign_cert.output, "closed the TLS connection"));

  auto wrong_name = try_join(s.node, "tls-4",
                             with({"--tls-server-name", "other.example"}));
  INFO(wrong_name.output);
  CHECK_FALSE(wrong_name.registered);
  CHECK(contains(wrong_name.output, "does not name 'other.example'"));

  auto plain = try_join(s.node, "tls-5", {"--token", token});
  INFO(plain.output);
  CHECK_FALSE(plain.registered);

  // None of them got through, and the port still serves a good worker.
  auto after = try_join(s.node, "tls-6", good);
  INFO(after.output);
  CHECK(after.registered);
}

TEST_CASE("a CAF port beyond loopback needs TLS with client certificates and "
          "tokens") {
  temp_dir dir;
  child_process open_port{
    {CEREBELUM_BIN, "node", "--data-dir", dir.path.string(), "--listen",
     "127.0.0.1:" + std::to_string(free_port()), "--http", "", "--caf-host",
     "0.0.0.0", "--caf-port", std::to_string(free_port())}};
  auto code = open_port.wait_exit(30s);
  INFO(open_port.output());
  REQUIRE(code);
  CHECK(*code == 2);
  CHECK(contains(open_port.output(), "--tls-client-ca"));
  CHECK(contains(open_port.output(), "--auth token"));
}
