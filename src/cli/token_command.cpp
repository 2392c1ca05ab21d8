// `cerebelum token create|list|revoke` (API tokens of a node started with
// --auth token) and `cerebelum dev-certs DIR` (a local CA and certificates
// for trying TLS). docs/security.md.

#include <CLI/CLI.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "src/bridges/json_convert.hpp"
#include "src/cli/admin_client.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/output.hpp"

namespace cerebelum::cli {

namespace {

struct create_options {
  std::string name;
  std::string role;
  std::vector<std::string> queues;
  std::vector<std::string> workflows;
  std::string expires;
  std::string cert_subject;
  bool json = false;
};

/// "30d", "12h", "90m", "45s" in milliseconds; -1 when malformed.
std::int64_t parse_duration(const std::string& text) {
  if (text.size() < 2) return -1;
  std::int64_t n = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || n > 1'000'000'000) return -1;
    n = n * 10 + (text[i] - '0');
  }
  switch (text.back()) {
    case 'd': return n * 86'400'000;
    case 'h': return n * 3'600'000;
    case 'm': return n * 60'000;
    case 's': return n * 1'000;
    default: return -1;
  }
}

std::string when(std::int64_t ms) {
  if (ms == 0) return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string joined(const google::protobuf::RepeatedPtrField<std::string>& xs) {
  if (xs.empty()) return "*";
  std::string out;
  for (const auto& x : xs)
    out += (out.empty() ? "" : ",") + x;
  return out;
}

int run_create(const global_options& global, const create_options& opts) {
  admin::CreateTokenRequest req;
  req.set_name(opts.name);
  req.set_role(opts.role);
  for (const auto& q : opts.queues)
    req.add_queues(q);
  for (const auto& w : opts.workflows)
    req.add_workflows(w);
  if (!opts.expires.empty()) {
    auto ms = parse_duration(opts.expires);
    if (ms <= 0)
      return usage_error("--expires: expected a number and d, h, m or s "
                         "(e.g. 30d), got '"
                         + opts.expires + "'");
    req.set_expires_in_ms(ms);
  }
  req.set_cert_subject(opts.cert_subject);
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::CreateTokenResponse res;
  auto ctx = admin_client::context();
  auto status = client.stub().CreateToken(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  if (opts.json) {
    print_json(api::message_to_json(res));
    return 0;
  }
  if (!res.token().cert_subject().empty()) {
    std::cerr << "principal " << res.token().id() << " (" << res.token().name()
              << ", role " << res.token().role()
              << "): every client certificate of the node's --tls-client-ca "
                 "with subject '"
              << res.token().cert_subject() << "'\n";
    std::cout << res.token().id() << '\n';
    return 0;
  }
  std::cerr << "token " << res.token().id() << " (" << res.token().name()
            << ", role " << res.token().role()
            << "): the secret below is shown once; keep it\n";
  std::cout << res.secret() << '\n';
  return 0;
}

int run_list(const global_options& global, bool json) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::ListTokensResponse res;
  auto ctx = admin_client::context();
  auto status = client.stub().ListTokens(ctx.get(), {}, &res);
  if (!status.ok()) return client.fail(status);
  if (json) {
    print_json(api::message_to_json(res));
    return 0;
  }
  if (res.tokens().empty()) std::cout << "no tokens\n";
  for (const auto& t : res.tokens()) {
    std::cout << t.id() << "  " << t.name() << "  " << t.role() << "  queues "
              << joined(t.queues()) << "  workflows " << joined(t.workflows())
              << "  created " << when(t.created_at_ms()) << "  expires "
              << when(t.expires_at_ms()) << "  last used "
              << when(t.last_used_ms());
    if (!t.cert_subject().empty())
      std::cout << "  certificate '" << t.cert_subject() << "'";
    if (t.revoked_at_ms() != 0)
      std::cout << "  REVOKED " << when(t.revoked_at_ms());
    std::cout << '\n';
  }
  return 0;
}

int run_revoke(const global_options& global, const std::string& id, bool json) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::RevokeTokenRequest req;
  req.set_id(id);
  admin::TokenInfo res;
  auto ctx = admin_client::context();
  auto status = client.stub().RevokeToken(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  if (json)
    print_json(api::message_to_json(res));
  else
    std::cout << "revoked " << res.id() << " (" << res.name() << ") at "
              << when(res.revoked_at_ms()) << '\n';
  return 0;
}

/// Runs `argv` (no shell); its output goes to /dev/null unless it fails.
bool run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::execvp(args[0], args.data());
    std::perror(args[0]);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// Makes `name`.key and `name`.pem in `dir`, signed by the CA there.
bool make_leaf(const std::filesystem::path& dir, const std::string& name,
               const std::string& cn, const std::string& san, int days) {
  auto ext = dir / (name + ".ext");
  {
    std::ofstream out{ext};
    out << "basicConstraints=CA:FALSE\n"
           "keyUsage=digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth,clientAuth\n";
    if (!san.empty()) out << "subjectAltName=" << san << '\n';
  }
  auto key = (dir / (name + ".key")).string();
  auto csr = (dir / (name + ".csr")).string();
  bool ok = run_program({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                         key, "-out", csr, "-subj", "/CN=" + cn})
            && run_program({"openssl", "x509", "-req", "-in", csr, "-CA",
                            (dir / "ca.pem").string(), "-CAkey",
                            (dir / "ca.key").string(), "-CAcreateserial",
                            "-out", (dir / (name + ".pem")).string(), "-days",
                            std::to_string(days), "-extfile", ext.string()});
  std::error_code ec;
  std::filesystem::remove(ext, ec);
  std::filesystem::remove(csr, ec);
  return ok;
}

int run_dev_certs(const std::string& dir_text,
                  const std::vector<std::string>& names,
                  const std::vector<std::string>& clients, int days) {
  for (const auto& c : clients)
    if (c.empty()
        || c.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                               "TUVWXYZ0123456789._-")
             != std::string::npos)
      return usage_error("--client: letters, digits, '.', '_' and '-' only, "
                         "got '"
                         + c + "'");
  namespace fs = std::filesystem;
  fs::path dir{dir_text};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "cannot create '" << dir_text << "': " << ec.message() << '\n';
    return 1;
  }
  ::umask(077);
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  for (const auto& n : names) {
    bool ip = n.find_first_not_of("0123456789.:abcdefABCDEF")
                == std::string::npos
              && (n.find('.') != std::string::npos
                  || n.find(':') != std::string::npos);
    san += (ip ? ",IP:" : ",DNS:") + n;
  }
  bool ok
    = run_program({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                   (dir / "ca.key").string(), "-out", (dir / "ca.pem").string(),
                   "-days", std::to_string(days), "-subj",
                   "/CN=Cerebelum development CA"})
      && make_leaf(dir, "node", "cerebelum-node", san, days)
      && make_leaf(dir, "client", "cerebelum-dev-client", "", days);
  for (const auto& c : clients)
    ok = ok && make_leaf(dir, "client-" + c, c, "", days);
  if (!ok) {
    std::cerr << "openssl failed (is the openssl command installed?)\n";
    return 1;
  }
  fs::remove(dir / "ca.srl", ec);
  std::cout << "wrote " << (dir / "ca.pem").string()
            << " (the CA clients trust), node.pem + node.key (the node), "
               "client.pem + client.key (a client certificate for mutual "
               "TLS, subject CN=cerebelum-dev-client)"
            << (clients.empty() ? ""
                                : ", client-NAME.pem + .key (subject CN=NAME)")
            << ", valid " << days << " days, for " << san
            << "\n  cerebelum node --tls-cert " << (dir / "node.pem").string()
            << " --tls-key " << (dir / "node.key").string()
            << " --auth token\n  cerebelum --tls-ca "
            << (dir / "ca.pem").string() << " --server localhost:9740 list\n";
  return 0;
}

} // namespace

std::string configure_connection(const global_options& global) {
  connection_settings s;
  s.token = global.token;
  if (s.token.empty() && !global.token_file.empty()) {
    std::ifstream in{global.token_file};
    if (!in) return "--token-file: cannot read '" + global.token_file + "'";
    std::getline(in, s.token);
  }
  if (s.token.empty())
    if (const char* env = std::getenv("CEREBELUM_TOKEN")) s.token = env;
  while (!s.token.empty()
         && (s.token.back() == '\n' || s.token.back() == '\r'
             || s.token.back() == ' '))
    s.token.pop_back();
  s.tls_ca = global.tls_ca;
  s.tls_cert = global.tls_cert;
  s.tls_key = global.tls_key;
  if (!s.tls_cert.empty() && s.tls_ca.empty())
    return "--tls-cert needs --tls-ca (the CA of the node's certificate)";
  return admin_client::configure(std::move(s));
}

void add_token_commands(CLI::App& app, const global_options& global,
                        command_set& set) {
  auto* token = app.add_subcommand(
    "token", "API tokens of a node started with --auth token (role admin)");
  token->require_subcommand(1);

  auto create = std::make_shared<create_options>();
  auto* c = token->add_subcommand(
    "create", "Make a token; prints its secret once (keep it), or, with "
              "--cert-subject, bind the principal to a client certificate");
  c->add_option("--name", create->name, "Who uses it: recorded as who did what")
    ->required();
  c->add_option("--role", create->role,
                "admin, operator, starter, reader or worker "
                "(docs/security.md)")
    ->required()
    ->check(
      CLI::IsMember({"admin", "operator", "starter", "reader", "worker"}));
  c->add_option("--queues", create->queues,
                "Worker: the only queues it may serve")
    ->delimiter(',');
  c->add_option("--workflows", create->workflows,
                "The only workflows whose executions it may start, read "
                "and act on")
    ->delimiter(',');
  c->add_option("--expires", create->expires,
                "Lifetime, e.g. 30d, 12h, 90m (default: never)");
  c->add_option("--cert-subject", create->cert_subject,
                "Make no secret: the principal is every client certificate "
                "(of the node's --tls-client-ca) with this subject, in RFC "
                "2253 form as `openssl x509 -noout -subject -nameopt "
                "RFC2253` prints it, e.g. 'CN=ci-runner,O=Example'; prints "
                "the principal's id");
  c->add_flag("--json", create->json, "Print the token as JSON");
  set.add(c, [&global, create] {
    return run_create(global, *create);
  });

  auto list_json = std::make_shared<bool>(false);
  auto* l = token->add_subcommand(
    "list", "Every token: name, role, scopes, expiry, last use, revocation, "
            "certificate subject");
  l->add_flag("--json", *list_json, "Print JSON");
  set.add(l, [&global, list_json] {
    return run_list(global, *list_json);
  });

  auto revoke_id = std::make_shared<std::string>();
  auto revoke_json = std::make_shared<bool>(false);
  auto* r = token->add_subcommand(
    "revoke", "Revoke a token by id (in force on every node within 5 s)");
  r->add_option("id", *revoke_id, "The token's id (token list)")->required();
  r->add_flag("--json", *revoke_json, "Print JSON");
  set.add(r, [&global, revoke_id, revoke_json] {
    return run_revoke(global, *revoke_id, *revoke_json);
  });
}

void add_dev_certs_command(CLI::App& app, command_set& set) {
  struct options {
    std::string dir;
    std::vector<std::string> names;
    std::vector<std::string> clients;
    int days = 365;
  };
  auto opts = std::make_shared<options>();
  auto* cmd = app.add_subcommand(
    "dev-certs", "Make a local CA, a node certificate and a client "
                 "certificate for trying TLS (not for production)");
  cmd->add_option("dir", opts->dir, "Where to write them")->required();
  cmd->add_option("--name", opts->names,
                  "Another host name or IP the node is reached by (besides "
                  "localhost, 127.0.0.1, ::1); repeatable");
  cmd
    ->add_option("--client", opts->clients,
                 "Also a client certificate client-NAME.pem (+ .key) with "
                 "subject CN=NAME; repeatable")
    ->type_name("NAME");
  cmd->add_option("--days", opts->days, "Validity")
    ->check(CLI::Range(1, 3650))
    ->capture_default_str();
  set.add(cmd, [opts] {
    return run_dev_certs(opts->dir, opts->names, opts->clients, opts->days);
  });
}

} // namespace cerebelum::cli
