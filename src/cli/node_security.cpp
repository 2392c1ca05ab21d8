#include "src/cli/node_security.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "eventstore/event_store.hpp"
#include "src/auth/token.hpp"
#include "src/bridges/servers.hpp"

namespace cerebelum::cli {

namespace {

std::string host_of(const std::string& address) {
  std::string host;
  int port = 0;
  if (!api::split_address(address, host, port)) return address;
  return host;
}

} // namespace

bool is_loopback_host(const std::string& raw) {
  std::string host = raw;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::optional<std::string> exposure_problem(const node_options& opts) {
  if (opts.insecure) return std::nullopt;
  bool tokens = opts.auth == "token";
  bool tls = !opts.tls_cert.empty();
  if (!is_loopback_host(host_of(opts.listen)) && !(tokens && tls))
    return "--listen " + opts.listen
           + " is beyond loopback: add --tls-cert FILE --tls-key FILE and "
             "--auth token (cerebelum dev-certs DIR makes test certificates), "
             "or --insecure to accept the risk";
  if (!opts.http.empty() && !is_loopback_host(host_of(opts.http))
      && !(tokens && tls))
    return "--http " + opts.http
           + " is beyond loopback: add --tls-cert FILE --tls-key FILE and "
             "--auth token (the HTTP API then serves HTTPS only), turn it off "
             "with --http '', or --insecure to accept the risk";
  if (opts.caf_port > 0 && !is_loopback_host(opts.caf_host)
      && !(tokens && tls && !opts.tls_client_ca.empty()))
    return "--caf-host " + opts.caf_host
           + " is beyond loopback: the CAF worker port needs --tls-cert FILE "
             "--tls-key FILE --tls-client-ca FILE (workers present a "
             "certificate of that CA) and --auth token, or keep it on "
             "loopback, or add --insecure to accept the risk";
  return std::nullopt;
}

std::string insecure_exposure(const node_options& opts) {
  if (!opts.insecure) return {};
  auto plain = opts;
  plain.insecure = false;
  auto problem = exposure_problem(plain);
  return problem ? "--insecure: " + *problem : std::string{};
}

std::optional<std::string> make_data_dir_private(const std::string& dir) {
  ::umask(077);
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec)
    return "cannot make the data directory '" + dir
           + "' private (chmod 700): " + ec.message();
  for (const auto& entry : fs::directory_iterator{dir, ec}) {
    std::error_code fec;
    if (!entry.is_regular_file(fec)) continue;
    fs::permissions(entry.path(), fs::perms::group_all | fs::perms::others_all,
                    fs::perm_options::remove, fec);
    if (fec)
      return "cannot make '" + entry.path().string()
             + "' private: " + fec.message();
  }
  if (ec)
    return "cannot list the data directory '" + dir + "': " + ec.message();
  return std::nullopt;
}

std::string bootstrap_admin_token(eventstore::event_store& store,
                                  const std::string& data_dir, bool& failed) {
  failed = false;
  auto now = auth::wall_clock_ms();
  auto rows = store.list_tokens();
  if (!rows) {
    failed = true;
    return "cannot read the tokens: " + rows.err().message;
  }
  for (const auto& row : *rows)
    if (row.role == "admin" && row.revoked_at_ms == 0
        && (row.expires_at_ms == 0 || row.expires_at_ms > now))
      return {};
  auth::token_spec spec;
  spec.name = "admin";
  spec.r = auth::role::admin;
  auto made = auth::make_token(spec, now);
  auto path = (std::filesystem::path{data_dir} / "admin.token").string();
  {
    // umask 077 is in force: the file is created 0600.
    std::ofstream out{path, std::ios::trunc};
    out << made.text << "\n";
    if (!out.good()) {
      failed = true;
      return "cannot write '" + path + "'";
    }
  }
  std::filesystem::permissions(path,
                               std::filesystem::perms::owner_read
                                 | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  if (auto put = store.put_token(made.row); !put) {
    failed = true;
    std::filesystem::remove(path);
    return "cannot store the first admin token: " + put.err().message;
  }
  return "no admin token was usable: made token '" + made.row.id
         + "' (role admin) and wrote it to " + path
         + " (export CEREBELUM_TOKEN=$(cat " + path + "))";
}

} // namespace cerebelum::cli
