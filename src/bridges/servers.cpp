#include "src/bridges/servers.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <charconv>

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

caf::expected<caf::actor>
start_grpc(caf::actor_system& sys, const std::string& address,
           const std::shared_ptr<actors::engine_api>& engine,
           const actors::task_api_ptr& tasks) {
  auto service = std::make_shared<admin_service>(engine, tasks);
  std::shared_ptr<worker_service> workers;
  if (tasks) workers = std::make_shared<worker_service>(tasks);
  grpc::ServerBuilder builder;
  // Without this, Linux lets a second node bind the same port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
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
  spdlog::info("gRPC AdminService{} listening on {}",
               workers ? " and WorkerService" : "", address);
  auto shutdown = [server, service, workers] {
    if (workers) workers->stop_polls();
    server->Shutdown(std::chrono::system_clock::now()
                     + std::chrono::seconds{2});
    server->Wait();
  };
  return sys.spawn<caf::detached>(server_owner, "gRPC", address,
                                  std::move(shutdown));
}

caf::expected<caf::actor>
start_http(caf::actor_system& sys, const std::string& address,
           const std::shared_ptr<actors::engine_api>& engine,
           http_options opts) {
  std::string host;
  int port = 0;
  if (!split_address(address, host, port))
    return make_error(errc::invalid_argument,
                      "--http: expected HOST:PORT, got '" + address + "'");
  std::shared_ptr<http::server> server = make_http_api(engine, opts);
  if (auto err = server->listen(host, port))
    return make_error(errc::unavailable,
                      "cannot listen on " + address
                        + " (HTTP): " + actors::api_error_message(err));
  spdlog::info("HTTP API listening on {}", address);
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
                 actors::task_api_ptr tasks) {
  return make_spec("grpc_server",
                   [address, engine, tasks](caf::actor_system& sys,
                                            const caf::message&) {
                     return start_grpc(sys, address, engine, tasks);
                   });
}

supervision::child_spec
http_server_spec(std::string address,
                 std::shared_ptr<actors::engine_api> engine,
                 http_options opts) {
  return make_spec("http_server",
                   [address, engine, opts](caf::actor_system& sys,
                                           const caf::message&) {
                     return start_http(sys, address, engine, opts);
                   });
}

} // namespace cerebelum::api
