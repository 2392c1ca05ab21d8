// Principals bound to a client certificate's subject (docs/security.md)
// against the real `cerebelum node` with mutual TLS and `--auth token`: a
// verified certificate without a token is the principal bound to its
// subject, over gRPC (the CLI) and HTTPS; a token wins; a revocation ends
// it. And the normal form of subjects (src/auth/cert_subject.hpp).

#include <catch2/catch.hpp>

#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "src/auth/cert_subject.hpp"
#include "tests/node/node_fixture.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/tokens.hpp"

using namespace cerebelum::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace auth = cerebelum::auth;

namespace {

/// A node with mutual TLS (the dev-certs CA) and tokens; client
/// certificates with subjects CN=ci-reader, CN=ci-operator, CN=stranger.
struct mtls_node {
  temp_dir dir;
  std::filesystem::path certs = dir.path / "certs";
  bool made = run_cli({"dev-certs", certs.string(), "--client", "ci-reader",
                       "--client", "ci-operator", "--client", "stranger"})
                .code
              == 0;
  node_process node{{},
                    {},
                    {},
                    {"--auth", "token", "--tls-cert",
                     (certs / "node.pem").string(), "--tls-key",
                     (certs / "node.key").string(), "--tls-client-ca",
                     (certs / "ca.pem").string()}};
  std::string admin = first_line(node.data_dir() / "admin.token");

  /// The CLI's TLS options showing client certificate `client` ("client"
  /// is the one dev-certs always makes).
  std::vector<std::string> tls(const std::string& client) const {
    auto base = client == "client" ? client : "client-" + client;
    return {"--tls-ca",   (certs / "ca.pem").string(),
            "--tls-cert", (certs / (base + ".pem")).string(),
            "--tls-key",  (certs / (base + ".key")).string()};
  }

  /// Runs the CLI showing certificate `client`, with `token` when given.
  cli_result cli(const std::string& client, std::vector<std::string> args,
                 const std::string& token = {}) {
    auto flags = tls(client);
    if (!token.empty()) flags.insert(flags.end(), {"--token", token});
    args.insert(args.begin(), flags.begin(), flags.end());
    return node.cli(std::move(args));
  }

  /// `token create` by the admin; `extra` holds --cert-subject and the like.
  cli_result create(const std::string& name, const std::string& role,
                    const std::vector<std::string>& extra) {
    return cli("client", token_create_args(name, role, extra), admin);
  }

  /// An HTTPS client of the node showing certificate `client`.
  std::unique_ptr<httplib::SSLClient> https(const std::string& client) const {
    auto base = client == "client" ? client : "client-" + client;
    auto c = std::make_unique<httplib::SSLClient>(
      "127.0.0.1", node.http_port, (certs / (base + ".pem")).string(),
      (certs / (base + ".key")).string());
    c->set_ca_cert_path((certs / "ca.pem").string());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5, 0);
    c->set_read_timeout(5, 0);
    return c;
  }
};

/// The HTTP status of `method` `path` (empty JSON body for POST).
int http_status(httplib::SSLClient& c, const std::string& method,
                const std::string& path, const std::string& token = {}) {
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  auto res = method == "GET" ? c.Get(path, headers)
                             : c.Post(path, headers, "{}", "application/json");
  return res ? res->status : -1;
}

/// The principal id `token create --json` printed; fails unless it
/// succeeded, made no secret and bound `subject`.
std::string created_principal(const cli_result& r, const std::string& subject) {
  INFO(r.output);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.output);
  CHECK(j.value("secret", std::string{}).empty());
  CHECK(j["token"]["cert_subject"] == subject);
  return j["token"]["id"].get<std::string>();
}

} // namespace

TEST_CASE("a subject is normalised: spaces around separators dropped, "
          "attribute types as short names, values kept as written") {
  CHECK(auth::normalize_subject("CN=ci-runner,O=Example")
        == "CN=ci-runner,O=Example");
  CHECK(auth::normalize_subject(" cn = ci-runner , o=Example ")
        == "CN=ci-runner,O=Example");
  CHECK(auth::normalize_subject("commonName=a+UID=b,organizationName=Ex")
        == "CN=a+UID=b,O=Ex");
  CHECK(auth::normalize_subject("emailAddress=x@example.org,CN=x")
        == "emailAddress=x@example.org,CN=x");
  // An escaped comma is part of the value; an escaped trailing space stays.
  CHECK(auth::normalize_subject(R"(CN=a,O=Example\, Inc.)")
        == R"(CN=a,O=Example\, Inc.)");
  CHECK(auth::normalize_subject(R"(CN=a\ )") == R"(CN=a\ )");
  // Values compare exactly: case is kept.
  CHECK(auth::normalize_subject("CN=CI-Runner") == "CN=CI-Runner");
  for (const char* bad : {"", "  ", "ci-runner", "CN=", "=x", "CN=a,,O=b",
                          "/CN=ci-runner/O=Example", "NoSuchType=x"}) {
    INFO(bad);
    CHECK_FALSE(auth::normalize_subject(bad).has_value());
  }
}

TEST_CASE("the subject read from a certificate is its RFC 2253 form, most "
          "specific attribute first") {
  temp_dir dir;
  auto key = (dir.path / "k.pem").string();
  auto cert = (dir.path / "c.pem").string();
  auto command = "openssl req -x509 -newkey ec -pkeyopt "
                 "ec_paramgen_curve:prime256v1 -nodes -keyout '"
                 + key + "' -out '" + cert
                 + "' -days 1 -subj '/C=DE/O=Example, "
                   "Inc./OU=build/CN=ci-runner' 2>/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream in{cert};
  std::stringstream pem;
  pem << in.rdbuf();
  CHECK(auth::subject_of_pem(pem.str())
        == R"(CN=ci-runner,OU=build,O=Example\, Inc.,C=DE)");
  CHECK(auth::subject_of_pem("not a certificate").empty());
}

TEST_CASE("a client certificate bound to a reader principal may list but "
          "not approve, over gRPC and HTTPS, without a token") {
  mtls_node s;
  REQUIRE(s.made);
  // Made with a subject written loosely: it is stored in normal form.
  auto id = created_principal(s.create("ci-reader", "reader",
                                       {"--cert-subject", " cn = ci-reader"}),
                              "CN=ci-reader");

  auto listed = s.cli("ci-reader", {"list"});
  INFO(listed.output);
  CHECK(listed.code == 0);
  auto approve = s.cli("ci-reader", {"approve", "nope", "--by", "x"});
  CHECK(approve.code == 1);
  CHECK(approve.output.find("PERMISSION_DENIED") != std::string::npos);

  auto reader = s.https("ci-reader");
  CHECK(http_status(*reader, "GET", "/v1/executions") == 200);
  CHECK(http_status(*reader, "POST", "/v1/executions/nope/approve") == 403);

  // A subject bound to nothing, without a token: unauthenticated.
  auto stranger = s.cli("stranger", {"list"});
  CHECK(stranger.code == 1);
  CHECK(stranger.output.find("UNAUTHENTICATED") != std::string::npos);
  CHECK(stranger.output.find("CN=stranger") != std::string::npos);
  auto stranger_https = s.https("stranger");
  CHECK(http_status(*stranger_https, "GET", "/v1/executions") == 401);

  // A token, when sent, wins over the certificate: the admin's rights.
  CHECK(s.cli("stranger", {"list"}, s.admin).code == 0);
  CHECK(http_status(*stranger_https, "GET", "/v1/executions", s.admin) == 200);
  CHECK(http_status(*reader, "POST", "/v1/executions/nope/approve", s.admin)
        == 404);

  // The principal shows in token list, with its subject.
  auto list = s.cli("client", {"token", "list"}, s.admin);
  CHECK(list.output.find(id + "  ci-reader  reader") != std::string::npos);
  CHECK(list.output.find("certificate 'CN=ci-reader'") != std::string::npos);
  auto list_json = s.cli("client", {"token", "list", "--json"}, s.admin).json();
  bool listed_subject = false;
  for (const auto& t : list_json["tokens"])
    listed_subject = listed_subject
                     || (t["id"] == id && t["cert_subject"] == "CN=ci-reader");
  CHECK(listed_subject);

  // A second live principal for the same subject would be ambiguous.
  auto twice = s.create("ci-reader-2", "admin",
                        {"--cert-subject", "CN=ci-reader"});
  CHECK(twice.code == 1);
  CHECK(twice.output.find("FAILED_PRECONDITION") != std::string::npos);

  // Revoked: refused at once on this node, over both.
  auto revoked = s.cli("client", {"token", "revoke", id}, s.admin);
  INFO(revoked.output);
  REQUIRE(revoked.code == 0);
  auto after = s.cli("ci-reader", {"list"});
  CHECK(after.code == 1);
  CHECK(after.output.find("UNAUTHENTICATED") != std::string::npos);
  CHECK(http_status(*reader, "GET", "/v1/executions") == 401);
  // Its subject may then be bound again.
  created_principal(s.create("ci-reader-2", "reader",
                             {"--cert-subject", "CN=ci-reader"}),
                    "CN=ci-reader");
  CHECK(s.cli("ci-reader", {"list"}).code == 0);
}

TEST_CASE("an approval over a bound client certificate records the "
          "principal's name, and an expired binding is refused") {
  mtls_node s;
  REQUIRE(s.made);
  created_principal(s.create("ops-carol", "operator",
                             {"--cert-subject", "CN=ci-operator"}),
                    "CN=ci-operator");
  auto order = json{{"order_id", "p-1"},
                    {"amount", 1500},
                    {"items", {{{"sku", "a"}, {"qty", 1}}}}}
                 .dump();
  auto started = s.cli("ci-operator",
                       {"start", "order", "--id", "p-1", "--input", order});
  INFO(started.output);
  REQUIRE(started.code == 0);
  json last;
  for (int i = 0; i < 300; ++i) {
    last = s.cli("ci-operator", {"show", "p-1", "--json"}).json();
    if (last.is_object() && last["status"] == "awaiting_approval") break;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(last["status"] == "awaiting_approval");
  auto approved = s.cli("ci-operator",
                        {"approve", "p-1", "--by", "someone else"});
  INFO(approved.output);
  REQUIRE(approved.code == 0);
  auto history = s.https("ci-operator")->Get("/v1/executions/p-1/history");
  REQUIRE(history);
  REQUIRE(history->status == 200);
  // The principal is recorded; the typed name only as a note beside it.
  auto events = json::parse(history->body)["events"];
  json granted;
  for (auto& ev : events)
    if (ev["type"] == "approval_granted") granted = ev;
  CHECK(granted["by"] == "ops-carol");
  CHECK(granted["by_note"] == "someone else");

  created_principal(
    s.create("ci-brief", "reader",
             {"--cert-subject", "CN=stranger", "--expires", "1s"}),
    "CN=stranger");
  CHECK(s.cli("stranger", {"list"}).code == 0);
  // Past its expiry (checked on every request, remembered or not).
  std::this_thread::sleep_for(1100ms);
  auto expired = s.cli("stranger", {"list"});
  CHECK(expired.code == 1);
  CHECK(expired.output.find("UNAUTHENTICATED") != std::string::npos);
}
