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

namespace {

/// A node with TLS, client certificates of the dev-certs CA and tokens;
/// client certificates CN=cert-worker, CN=cert-reader, CN=cert-revoked and
/// CN=stranger (docs/security.md, *Client certificates as principals*).
struct mtls_caf_node {
  temp_dir dir;
  std::filesystem::path certs = dir.path / "certs";
  bool made = make_certs(certs);
  secured_caf_node s{{"--tls-cert", pem("node.pem"), "--tls-key",
                      pem("node.key"), "--tls-client-ca", pem("ca.pem")},
                     {"--tls-ca", pem("ca.pem"), "--tls-cert",
                      pem("client.pem"), "--tls-key", pem("client.key")}};

  static bool make_certs(const std::filesystem::path& to) {
    child_process gen{{CEREBELUM_BIN, "dev-certs", to.string(), "--client",
                       "cert-worker", "--client", "cert-reader", "--client",
                       "cert-revoked", "--client", "stranger"}};
    return gen.wait_exit(60s) == 0;
  }

  std::string pem(const std::string& file) const {
    return (certs / file).string();
  }

  /// The example worker's TLS options showing `client-NAME.pem`.
  std::vector<std::string> shows(const std::string& name) const {
    return {"--tls-ca",   pem("ca.pem"),
            "--tls-cert", pem("client-" + name + ".pem"),
            "--tls-key",  pem("client-" + name + ".key")};
  }

  /// `token create NAME --role ROLE --cert-subject CN=NAME`: the id.
  std::string bind(const std::string& name, const std::string& role) {
    auto [code, out]
      = s.cli(token_create_args(name, role, {"--cert-subject", "CN=" + name}));
    INFO(out);
    REQUIRE(code == 0);
    auto j = nlohmann::json::parse(out);
    CHECK(j.value("secret", std::string{}).empty());
    return j["token"]["id"].get<std::string>();
  }
};

} // namespace

TEST_CASE("a CAF worker without a token is the principal its verified "
          "client certificate is bound to, and a subject bound to no live "
          "principal or to one without the work permission is refused") {
  mtls_caf_node m;
  REQUIRE(m.made);
  m.bind("cert-worker", "worker");
  m.bind("cert-reader", "reader");
  auto revoked = m.bind("cert-revoked", "worker");
  REQUIRE(m.s.cli({"token", "revoke", revoked}).first == 0);

  // Served: it registers the workflow and runs an execution of it.
  auto worker = spawn_worker(m.s.node, "cert-1", m.shows("cert-worker"), true);
  auto joined = worker->wait_for_line("registered (queues", 30s);
  INFO(worker->output());
  REQUIRE(joined);
  CHECK(logged(m.s.node, "CAF worker cert-1 registered", 5s));
  auto [code, out]
    = m.s.cli({"start", "caf_invoice", "--id", "inv-cert", "--wait", "--input",
               R"({"items": [{"sku": "a", "qty": 2, "price_cents": 150}], )"
               R"("tax_rate": 0.2, "work_ms": 0, "send_after_ms": 0})"});
  INFO(out);
  CHECK(code == 0);
  CHECK(contains(out, "completed"));
  worker->kill_hard();

  for (const auto* name : {"stranger", "cert-revoked"}) {
    INFO(name);
    auto r = try_join(m.s.node, std::string{"w-"} + name, m.shows(name));
    INFO(r.output);
    CHECK_FALSE(r.registered);
    CHECK(contains(r.output, "unauthenticated"));
    CHECK(
      contains(r.output, "client certificate's subject 'CN=" + std::string{name}
                           + "' is bound to no live principal"));
  }
  auto reader = try_join(m.s.node, "w-reader", m.shows("cert-reader"));
  INFO(reader.output);
  CHECK_FALSE(reader.registered);
  CHECK(contains(reader.output, "permission_denied"));
  CHECK(contains(reader.output, "token 'cert-reader' (role reader) may not"));
  // The certificate dev-certs always makes is bound to nobody.
  auto bare = try_join(m.s.node, "w-bare",
                       {"--tls-ca", m.pem("ca.pem"), "--tls-cert",
                        m.pem("client.pem"), "--tls-key", m.pem("client.key")});
  INFO(bare.output);
  CHECK_FALSE(bare.registered);
  CHECK(contains(bare.output, "'CN=cerebelum-dev-client' is bound to no live"));
}

TEST_CASE("a CAF worker's token wins over its client certificate, and "
          "revoking the principal of a certificate ends its session") {
  mtls_caf_node m;
  REQUIRE(m.made);
  auto id = m.bind("cert-worker", "worker");
  auto token = m.s.make("token-worker", "worker").second;

  // A good token with a certificate bound to nobody: the token's principal.
  auto args = m.shows("stranger");
  args.insert(args.end(), {"--token", token});
  auto with_token = try_join(m.s.node, "w-token", args);
  INFO(with_token.output);
  CHECK(with_token.registered);
  // A bad token with a bound certificate: refused, the certificate is not
  // looked at.
  args = m.shows("cert-worker");
  args.insert(args.end(),
              {"--token", "cbm_0000000000000000_" + std::string(64, '0')});
  auto bad_token = try_join(m.s.node, "w-bad-token", args);
  INFO(bad_token.output);
  CHECK_FALSE(bad_token.registered);
  CHECK(contains(bad_token.output, "unknown token"));

  auto worker = spawn_worker(m.s.node, "cert-2", m.shows("cert-worker"), false);
  auto joined = worker->wait_for_line("registered (queues", 30s);
  INFO(worker->output());
  REQUIRE(joined);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(m.s.cli({"token", "revoke", id}).first == 0);
  auto code = worker->wait_exit(20s);
  auto took = std::chrono::steady_clock::now() - t0;
  INFO(worker->output());
  REQUIRE(code);
  CHECK(*code != 0);
  CHECK(contains(worker->output(), "is bound to no live principal"));
  CHECK(took < 12s);
  CHECK(logged(m.s.node, "CAF worker cert-2 dropped", 1s));
}

TEST_CASE("a CAF worker holds max_in_flight of its principal's waiting "
          "requests: beyond the limit it is refused while another "
          "principal is served") {
  secured_caf_node s{{"--max-waits-per-principal", "4"}};
  auto a = s.make("team-a", "worker").second;
  auto b = s.make("team-b", "worker").second;
  auto first = spawn_worker(s.node, "a-1",
                            {"--token", a, "--max-in-flight", "3"}, false);
  auto joined = first->wait_for_line("registered (queues", 30s);
  INFO(first->output());
  REQUIRE(joined);

  // 3 + 2 > 4: refused, naming the principal, what it holds and the flag.
  auto over = try_join(s.node, "a-2", {"--token", a, "--max-in-flight", "2"});
  INFO(over.output);
  CHECK_FALSE(over.registered);
  CHECK(contains(over.output, "resource_exhausted"));
  CHECK(contains(over.output, "principal 'team-a', which holds 3 of the 4"));
  CHECK(contains(over.output, "--max-waits-per-principal"));
  // More than the limit at all: refused whatever the principal holds.
  auto huge = try_join(s.node, "b-0", {"--token", b, "--max-in-flight", "5"});
  INFO(huge.output);
  CHECK_FALSE(huge.registered);
  CHECK(contains(huge.output, "asks for 5 tasks in flight"));
  // Another principal is served meanwhile; a-1's one free place too.
  auto other = try_join(s.node, "b-1", {"--token", b, "--max-in-flight", "4"});
  INFO(other.output);
  CHECK(other.registered);
  auto fits = try_join(s.node, "a-3", {"--token", a, "--max-in-flight", "1"});
  INFO(fits.output);
  CHECK(fits.registered);

  // a-1 gone: its places are given back and a-2 fits.
  first->kill_hard();
  REQUIRE(logged(s.node, "CAF worker a-1 lost", 10s));
  auto after = try_join(s.node, "a-2", {"--token", a, "--max-in-flight", "2"});
  INFO(after.output);
  CHECK(after.registered);
}

TEST_CASE("without tokens a CAF worker may ask for at most "
          "max-waits-per-principal tasks in flight") {
  caf_node node{{"--max-waits-per-principal", "2"}};
  auto over = try_join(node, "w-3", {"--max-in-flight", "3"});
  INFO(over.output);
  CHECK_FALSE(over.registered);
  CHECK(contains(over.output, "resource_exhausted"));
  CHECK(contains(over.output, "asks for 3 tasks in flight"));
  auto ok = try_join(node, "w-2", {"--max-in-flight", "2"});
  INFO(ok.output);
  CHECK(ok.registered);
}
