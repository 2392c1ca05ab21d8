#include "src/bridges/caf/caf_port.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <mutex>

#include "src/bridges/caf/worker_gateway.hpp"

namespace cerebelum::caf_guard {

namespace {

/// Owns a guard: it stops when the actor exits, whatever the reason.
caf::behavior guard_owner(caf::event_based_actor* self,
                          std::shared_ptr<guard> g) {
  self->attach_functor([g](const caf::error&) {
    g->stop();
    spdlog::info("CAF worker port {} closed", g->address());
  });
  return {
    [g](caf::get_atom) {
      return g->address();
    },
  };
}

void log_exposure(const guard& g, const guard_options& opts, bool tokens) {
  auto limits = fmt::format(
    "each frame checked before CAF sees it (payloads up to {} bytes, at "
    "most {} connections)",
    opts.limits.max_payload, opts.max_connections);
  std::string security = opts.tls.enabled()
                           ? (opts.tls.client_ca.empty()
                                ? "TLS without client certificates"
                                : "TLS, client certificates required")
                           : "no TLS";
  security += tokens ? ", tokens required" : ", no tokens";
  if (g.loopback()
      || (opts.tls.enabled() && !opts.tls.client_ca.empty() && tokens))
    spdlog::info("CAF worker port {} ({}); {}", g.address(), security, limits);
  else
    spdlog::warn("CAF worker port {} ({}) is NOT bound to loopback: any host "
                 "that reaches it can join as a worker; {}",
                 g.address(), security, limits);
}

} // namespace

supervision::child_spec guard_spec(guard_options opts, bool tokens) {
  supervision::child_spec spec;
  spec.id = "caf_guard";
  spec.restart = supervision::restart_type::permanent;
  spec.shutdown = supervision::shutdown_timeout(std::chrono::seconds{5});
  spec.start = [opts,
                tokens](caf::actor_system& sys,
                        const caf::message&) -> caf::expected<caf::actor> {
    // The relay thread reports a fatal error by killing its owner, which
    // the supervisor then restarts.
    struct owner_cell {
      std::mutex mtx;
      caf::weak_actor_ptr actor;
    };
    auto owner = std::make_shared<owner_cell>();
    auto started = guard::start(opts, [owner] {
      std::lock_guard<std::mutex> lock{owner->mtx};
      if (auto a = caf::actor_cast<caf::actor>(owner->actor))
        caf::anon_send_exit(a, caf::exit_reason::kill);
    });
    if (!started) return std::move(started.error());
    std::shared_ptr<guard> g{std::move(*started)};
    log_exposure(*g, opts, tokens);
    auto a = sys.spawn(guard_owner, g);
    std::lock_guard<std::mutex> lock{owner->mtx};
    owner->actor = caf::actor_cast<caf::weak_actor_ptr>(a);
    return a;
  };
  return spec;
}

std::vector<supervision::child_spec>
caf_port_specs(std::string host, std::uint16_t port, actors::task_api_ptr tasks,
               guard_options opts, actors::gateway_security sec) {
  auto upstream = std::make_shared<caf_guard::upstream>();
  opts.host = std::move(host);
  opts.port = port;
  opts.upstream = upstream;
  if (sec.auth && opts.tls.enabled() && !opts.tls.client_ca.empty()) {
    // Verified client certificates are principals (a worker without a
    // token): the guard tells the gateway which connection showed which.
    auto peers = std::make_shared<peer_subjects>();
    opts.peers = peers;
    sec.peers = std::move(peers);
  }
  std::vector<supervision::child_spec> specs;
  bool tokens = sec.auth != nullptr;
  specs.push_back(
    actors::worker_gateway_spec(std::move(tasks), upstream, std::move(sec)));
  specs.push_back(guard_spec(std::move(opts), tokens));
  return specs;
}

} // namespace cerebelum::caf_guard
