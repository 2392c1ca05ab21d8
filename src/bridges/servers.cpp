#include "src/bridges/servers.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <fstream>
#include <iterator>

#include "actors/engine_api.hpp"
#include "actors/errc.hpp"
#include "src/bridges/admin_service.hpp"
#include "src/bridges/grpc_metrics.hpp"
#include "src/bridges/worker_service.hpp"

namespace cerebelum::api {

namespace {

using actors::errc;
using actors::make_error;

/// Owns a server for its lifetime: `shutdown` runs when the actor exits,
/// whatever the reason. Spawned detached: a server's stop blocks until its
/// calls are answered, and those answers come from actors that need the
/// scheduler's threads.
caf::behavior server_owner(caf::event_based_actor* self, std::string what,
                           std::string address,
                           std::function<void()> shutdown) {
  self->attach_functor([what, address, shutdown](const caf::error&) {
    shutdown();
    spdlog::info("{} server on {} stopped", what, address);
  });
  return {
    [address](caf::get_atom) {
      return address;
    },
  };
}

/// The credentials of a listener: TLS (with client certificates when a CA
/// is given) or none.
caf::expected<std::shared_ptr<grpc::ServerCredentials>>
server_credentials(const tls_files& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  auto cert = read_pem("--tls-cert", tls.cert);
  if (!cert) return cert.error();
  auto key = read_pem("--tls-key", tls.key);
  if (!key) return key.error();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca.empty()) {
    auto ca = read_pem("--tls-client-ca", tls.client_ca);
    if (!ca) return ca.error();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request
      = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

caf::expected<caf::actor>
start_grpc(caf::actor_system& sys, const std::string& address,
           const std::shared_ptr<actors::engine_api>& engine,
           const actors::task_api_ptr& tasks, const grpc_options& opts) {
  auto creds = server_credentials(opts.tls);
  if (!creds) return creds.error();
  auto service = std::make_shared<admin_service>(engine, tasks, opts.auth,
                                                 opts.warnings, opts.waits);
  std::shared_ptr<worker_service> workers;
  if (tasks)
    workers = std::make_shared<worker_service>(tasks, opts.auth, opts.owners,
                                               opts.waits);
  grpc::ServerBuilder builder;
  // Without this, Linux lets a second node bind the same port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(address, *creds, &port);
  builder.RegisterService(service.get());
  if (workers) builder.RegisterService(workers.get());
  // Worker results up to 1 MiB of JSON plus the envelope.
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  count_grpc_calls(builder, engine);
  std::shared_ptr<grpc::Server> server{builder.BuildAndStart()};
  if (!server || port == 0)
    return make_error(errc::unavailable,
                      "cannot listen on " + address
                        + " (gRPC): address in use or invalid");
  spdlog::info("gRPC AdminService{} listening on {}{}{}",
               workers ? " and WorkerService" : "", address,
               opts.tls.enabled() ? " (TLS" : " (no TLS",
               opts.auth ? ", tokens required)" : ", no tokens)");
  auto shutdown = [server, service, workers] {
    if (workers) workers->stop_polls();
    server->Shutdown(std::chrono::system_clock::now()
                     + std::chrono::seconds{2});
    server->Wait();
  };
  return sys.spawn<caf::detached>(server_owner, "gRPC", address,
                                  std::move(shutdown));
}

/// The PEM text of the HTTP server's TLS files (none when TLS is off).
caf::expected<http::tls_pem> read_tls(const tls_files& tls) {
  if (!tls.enabled()) return http::tls_pem{};
  http::tls_pem pem;
  auto cert = read_pem("--tls-cert", tls.cert);
  if (!cert) return cert.error();
  pem.cert_chain = std::move(*cert);
  auto key = read_pem("--tls-key", tls.key);
  if (!key) return key.error();
  pem.key = std::move(*key);
  if (!tls.client_ca.empty()) {
    auto ca = read_pem("--tls-client-ca", tls.client_ca);
    if (!ca) return ca.error();
    pem.client_ca = std::move(*ca);
  }
  return pem;
}

caf::expected<caf::actor>
start_http(caf::actor_system& sys, const std::string& address,
           const std::shared_ptr<actors::engine_api>& engine, http_options opts,
           const tls_files& tls) {
  std::string host;
  int port = 0;
  if (!split_address(address, host, port))
    return make_error(errc::invalid_argument,
                      "--http: expected HOST:PORT, got '" + address + "'");
  auto pem = read_tls(tls);
  if (!pem) return pem.error();
  opts.server.tls = std::move(*pem);
  std::shared_ptr<http::server> server = make_http_api(engine, opts);
  if (auto err = server->listen(host, port))
    return make_error(errc::unavailable,
                      "cannot listen on " + address
                        + " (HTTP): " + actors::api_error_message(err));
  spdlog::info("HTTP API listening on {}{}{}", address,
               tls.enabled() ? " (HTTPS" : " (plain HTTP",
               opts.auth ? ", tokens required)" : ", no tokens)");
  auto shutdown = [server] {
    server->stop();
  };
  return sys.spawn<caf::detached>(server_owner, "HTTP", address,
                                  std::move(shutdown));
}

supervision::child_spec make_spec(std::string id,
                                  supervision::start_function start) {
  supervision::child_spec spec;
  spec.id = std::move(id);
  spec.start = std::move(start);
  spec.restart = supervision::restart_type::permanent;
  spec.shutdown = supervision::shutdown_timeout(std::chrono::seconds{10});
  return spec;
}

} // namespace

bool split_address(const std::string& address, std::string& host, int& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  auto digits = std::string_view{address}.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(),
                                   port);
  return ec == std::errc{} && end == digits.data() + digits.size() && port >= 0
         && port <= 65535 && !host.empty();
}

supervision::child_spec
grpc_server_spec(std::string address,
                 std::shared_ptr<actors::engine_api> engine,
                 actors::task_api_ptr tasks, grpc_options opts) {
  return make_spec("grpc_server",
                   [address, engine, tasks, opts](caf::actor_system& sys,
                                                  const caf::message&) {
                     return start_grpc(sys, address, engine, tasks, opts);
                   });
}

caf::expected<std::string> read_pem(const std::string& what,
                                    const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::string text{std::istreambuf_iterator<char>{in},
                   std::istreambuf_iterator<char>{}};
  if (!in.good() && !in.eof())
    return make_error(errc::invalid_argument,
                      what + ": cannot read '" + path + "'");
  if (text.find("-----BEGIN ") == std::string::npos)
    return make_error(errc::invalid_argument,
                      what + ": '" + path + "' is not a PEM file");
  return text;
}

supervision::child_spec
http_server_spec(std::string address,
                 std::shared_ptr<actors::engine_api> engine, http_options opts,
                 tls_files tls) {
  return make_spec("http_server",
                   [address, engine, opts, tls](caf::actor_system& sys,
                                                const caf::message&) {
                     return start_http(sys, address, engine, opts, tls);
                   });
}

} // namespace cerebelum::api
