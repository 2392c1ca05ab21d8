#include "src/cli/node_command.hpp"

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sys/resource.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include "actors/engine_api.hpp"
#include "actors/function_registry.hpp"
#include "actors/node.hpp"
#include "actors/payload_limit.hpp"
#include "eventstore/sqlite_store.hpp"
#include "src/auth/authenticator.hpp"
#include "src/bridges/caf/caf_port.hpp"
#include "src/bridges/servers.hpp"
#include "src/cli/node_security.hpp"
#include "src/demo/demo_functions.hpp"
#include "wire/wire.hpp"

namespace cerebelum::cli {

namespace {

/// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread; threads started
/// later (CAF's workers) inherit the mask, so only `wait_for_stop_signal` sees
/// them.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1); // the supervision tree terminated on its own
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_for_stop_signal(const sigset_t& set) {
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
    // EINTR: keep waiting.
  }
  return sig;
}

/// Checks a HOST:PORT option; empty is allowed when `optional`.
CLI::Validator address_check(bool optional) {
  return CLI::Validator(
    [optional](std::string& value) -> std::string {
      std::string host;
      int port = 0;
      if (optional && value.empty()) return {};
      if (api::split_address(value, host, port)) return {};
      return "expected HOST:PORT, got '" + value + "'";
    },
    "HOST:PORT");
}

/// The node's configuration: store, workflows, the demo functions and the
/// gRPC and HTTP servers as children of bridge_sup.
actors::node_config make_node_config(
  const node_options& opts,
  std::shared_ptr<std::shared_ptr<actors::engine_api>> engine_slot) {
  actors::node_config ncfg;
  ncfg.data_dir = opts.data_dir;
  ncfg.store = opts.store == "sqlite" ? std::string{} : opts.store;
  ncfg.store_check = eventstore::parse_sqlite_open_check(opts.store_check)
                       .value_or(eventstore::sqlite_open_check::full);
  ncfg.workflows_dir = opts.workflows_dir;
  ncfg.max_payload_bytes = opts.max_payload_bytes;
  ncfg.tasks.default_lease = std::chrono::milliseconds{
    static_cast<std::int64_t>(opts.task_lease_s * 1000)};
  ncfg.reoffers.max_reoffers = opts.max_reoffers;
  ncfg.tasks.allow_worker_calls = opts.allow_worker_calls;
  ncfg.admission_wait = std::chrono::milliseconds{
    static_cast<std::int64_t>(opts.admission_wait_s * 1000)};
  ncfg.functions = std::make_shared<actors::function_registry>();
  demo::register_demo_functions(*ncfg.functions);
  ncfg.bridges
    = [listen = opts.listen, http = opts.http, caf_host = opts.caf_host,
       caf_port = opts.caf_port, tokens = opts.auth == "token",
       tls = api::tls_files{opts.tls_cert, opts.tls_key, opts.tls_client_ca},
       exposed = insecure_exposure(opts),
       max_waits = opts.max_waits_per_principal, engine_slot](
        std::shared_ptr<actors::engine_api> api, actors::task_api_ptr tasks) {
        *engine_slot = api;
        api::authenticator_ptr auth;
        if (tokens)
          auth = std::make_shared<auth::authenticator>(
            [weak = std::weak_ptr<actors::engine_api>{api}] {
              auto engine = weak.lock();
              return engine ? engine->token_store() : nullptr;
            });
        std::vector<supervision::child_spec> specs;
        std::vector<std::string> warnings;
        if (!exposed.empty()) warnings.push_back(exposed);
        // gRPC and CAF workers: one worker id belongs to one token.
        auto owners = std::make_shared<auth::worker_owners>();
        // One count per principal over HTTP, gRPC and the CAF port;
        // without tokens no request has a principal and nothing is counted.
        auto waits = std::make_shared<api::principal_waits>(max_waits);
        specs.push_back(api::grpc_server_spec(
          listen, api, tasks, {auth, tls, warnings, owners, waits}));
        api::http_options http_opts;
        http_opts.auth = auth;
        http_opts.warnings = warnings;
        http_opts.waits = waits;
        if (!http.empty())
          specs.push_back(api::http_server_spec(http, api, http_opts, tls));
        // The gateway behind a guard that checks each BASP frame (and
        // ends TLS): libcaf_io trusts what it parses.
        if (caf_port > 0) {
          caf_guard::guard_options guard_opts;
          guard_opts.tls = tls;
          actors::gateway_security caf_sec;
          caf_sec.auth = auth;
          caf_sec.owners = owners;
          // A CAF worker's polls count against its principal's waits.
          caf_sec.waits = waits;
          for (auto& spec : caf_guard::caf_port_specs(
                 caf_host, static_cast<std::uint16_t>(caf_port), tasks,
                 std::move(guard_opts), std::move(caf_sec)))
            specs.push_back(std::move(spec));
        }
        return specs;
      };
  return ncfg;
}

/// Raises the soft limit of open files to the hard one, as servers that
/// hold many connections do: each waiting HTTP client, gRPC stream and
/// worker holds a descriptor, and the usual soft limit (1,024) would refuse
/// accepts long before the HTTP server's own 10,000-connection limit.
/// Returns the limit in force.
rlim_t raise_open_files_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit want = lim;
    want.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) lim = want;
  }
  return lim.rlim_cur;
}

} // namespace

void add_node_options(CLI::App& cmd, node_options& opts) {
  cmd
    .add_option("--data-dir", opts.data_dir,
                "Directory of the embedded store and the node's files")
    ->capture_default_str();
  cmd
    .add_option("--store", opts.store,
                "sqlite (embedded, in the data dir) or a PostgreSQL URI "
                "(postgresql://...)")
    ->capture_default_str();
  cmd
    .add_option("--store-check", opts.store_check,
                "What opening the embedded store verifies: full (PRAGMA "
                "integrity_check, reads every page), quick (quick_check: "
                "not indexes against tables) or none; a damaged store is "
                "refused")
    ->check(CLI::IsMember({"full", "quick", "none"}))
    ->capture_default_str();
  cmd.add_option("--listen", opts.listen, "gRPC AdminService address")
    ->check(address_check(false))
    ->capture_default_str();
  cmd
    .add_option("--http", opts.http,
                "HTTP/JSON API address; an empty string disables it")
    ->check(address_check(true))
    ->capture_default_str();
  cmd.add_option("--workflows", opts.workflows_dir,
                 "Load every *.yaml, *.yml and *.json workflow in this "
                 "directory");
  cmd.add_flag("--allow-worker-calls", opts.allow_worker_calls,
               "Let workflows that workers register have call steps (run "
               "this node's native functions); off, such a registration is "
               "refused");
  cmd
    .add_option("--caf-port", opts.caf_port,
                "Port for C++ workers (CAF networking); 0 keeps it closed")
    ->check(CLI::Range(0, 65535))
    ->capture_default_str();
  cmd
    .add_option("--caf-host", opts.caf_host,
                "Interface of the CAF port; beyond loopback it needs "
                "--tls-cert, --tls-key, --tls-client-ca and --auth token")
    ->capture_default_str();
  cmd
    .add_option("--shutdown-timeout", opts.shutdown_timeout_s,
                "Seconds to wait for a graceful stop before exiting without "
                "it (committed state is kept either way)")
    ->check(CLI::Range(0.001, 86400.0))
    ->capture_default_str();
  cmd
    .add_option("--max-payload-bytes", opts.max_payload_bytes,
                "Largest start input, approval data and step result or error "
                "(bytes of JSON); larger ones are refused or fail their step "
                "with payload_too_large")
    ->check(CLI::Range(std::size_t{1}, actors::max_payload_bytes_limit))
    ->capture_default_str();
  cmd
    .add_option("--admission-wait", opts.admission_wait_s,
                "Seconds the store writer's oldest append may have waited "
                "before new starts are refused (HTTP 429, gRPC "
                "RESOURCE_EXHAUSTED) instead of joining that wait; 0 turns "
                "this check off (the queue-length check stays)")
    ->check(CLI::Range(0.0, 3600.0))
    ->capture_default_str();
  cmd
    .add_option("--task-lease", opts.task_lease_s,
                "Seconds a worker keeps a task without a heartbeat (steps "
                "without heartbeat_timeout); workers heartbeat every third "
                "of it, so a dead worker's tasks go to others within it")
    ->check(CLI::Range(0.3, 3600.0))
    ->capture_default_str();
  cmd
    .add_option("--max-reoffers", opts.max_reoffers,
                "Times an attempt the engine lost (worker died or left, "
                "lease expired) is offered again without using the step's "
                "retry budget; then it is an ordinary failure of the step")
    ->check(CLI::Range(0u, 1000u))
    ->capture_default_str();
  cmd
    .add_option("--auth", opts.auth,
                "token: every request needs a token (Authorization: Bearer, "
                "gRPC metadata, a CAF worker's registration) or, on gRPC and "
                "HTTPS with --tls-client-ca, a client certificate bound to a "
                "principal (token create --cert-subject); the first "
                "start makes an admin token in DATA_DIR/admin.token. none: "
                "no checks (loopback only)")
    ->check(CLI::IsMember({"none", "token"}))
    ->capture_default_str();
  cmd.add_option("--tls-cert", opts.tls_cert,
                 "PEM certificate chain of the gRPC and HTTP listeners and "
                 "the CAF port (TLS; HTTP then serves HTTPS only)");
  cmd.add_option("--tls-key", opts.tls_key, "PEM private key of --tls-cert");
  cmd.add_option("--tls-client-ca", opts.tls_client_ca,
                 "Require client certificates signed by this PEM CA (mutual "
                 "TLS on gRPC, HTTP and the CAF port); with --auth token a "
                 "certificate without a token is the principal bound to its "
                 "subject");
  cmd
    .add_option("--max-waits-per-principal", opts.max_waits_per_principal,
                "With --auth token: waiting requests one token's principal "
                "may hold at once (HTTP ?wait=true starts and followed "
                "events, gRPC WaitForResult, FollowExecution and PollTask, "
                "a registered CAF worker's max_in_flight); the next is "
                "refused at once (HTTP 429, gRPC RESOURCE_EXHAUSTED, CAF "
                "resource_exhausted). Requests are counted, not "
                "connections. A CAF worker may ask for at most this many "
                "tasks in flight, with or without tokens")
    ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
    ->capture_default_str();
  cmd.add_flag("--insecure", opts.insecure,
               "Listen beyond loopback without TLS and tokens anyway "
               "(logged as a warning at start and shown by health)");
}

int run_node(const node_options& opts) {
  if (auto problem = exposure_problem(opts)) {
    spdlog::error("refusing to start: {}", *problem);
    return 2;
  }
  if (opts.tls_cert.empty() != opts.tls_key.empty()
      || (!opts.tls_client_ca.empty() && opts.tls_cert.empty())) {
    spdlog::error("refusing to start: --tls-cert and --tls-key go together, "
                  "and --tls-client-ca needs them");
    return 2;
  }
  if (auto exposed = insecure_exposure(opts); !exposed.empty())
    spdlog::warn("{}", exposed);
  ::umask(077);
  std::error_code ec;
  std::filesystem::create_directories(opts.data_dir, ec);
  if (ec) {
    spdlog::error("cannot create data directory '{}': {}", opts.data_dir,
                  ec.message());
    return 1;
  }
  if (auto warning = make_data_dir_private(opts.data_dir))
    spdlog::warn("{}", *warning);
  auto open_files = raise_open_files_limit();
  // The HTTP server's connections, plus the store, gRPC, workers and logs.
  constexpr rlim_t wanted_files = 10'000 + 1'024;
  if (open_files != RLIM_INFINITY && open_files < wanted_files)
    spdlog::warn("open files limit is {} (hard limit): fewer than {} "
                 "concurrent HTTP and gRPC clients can be served; raise it "
                 "(ulimit -Hn, LimitNOFILE= in a systemd unit)",
                 open_files, wanted_files);
  auto signals = block_stop_signals();
  caf::actor_system_config cfg;
  // Idle CAF threads block until there is work (work sharing). The default
  // work-stealing scheduler polls its queues and sleeps in steps of 50 us to
  // 10 ms, which keeps an idle node busy.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  actors::add_node_message_types(cfg);
  wire::add_wire_types(cfg); // the CAF worker port (src/bridges/caf)
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto engine_slot = std::make_shared<std::shared_ptr<actors::engine_api>>();
  auto ncfg = make_node_config(opts, engine_slot);
  auto node = actors::node::start(sys, ncfg, [](const caf::error&) {
    // Wake the main thread: the tree is gone, the node cannot serve.
    ::kill(::getpid(), SIGUSR1);
  });
  if (!node) {
    spdlog::error("node failed to start: {}", sys.render(node.error()));
    return 1;
  }
  if (opts.auth == "token") {
    auto* store = *engine_slot ? (*engine_slot)->token_store() : nullptr;
    bool failed = store == nullptr;
    auto said = store ? bootstrap_admin_token(*store, opts.data_dir, failed)
                      : std::string{"the store is not open"};
    if (failed) {
      spdlog::error("--auth token: {}; stopping", said);
      node->stop(std::chrono::seconds{10});
      return 1;
    }
    if (!said.empty()) spdlog::info("{}", said);
  }
  spdlog::info("node ready (data dir {}, store {}, gRPC {}, HTTP {}, CAF "
               "workers {}); SIGINT or SIGTERM stops it",
               opts.data_dir, opts.store == "sqlite" ? "sqlite" : "postgresql",
               opts.listen, opts.http.empty() ? "off" : opts.http,
               opts.caf_port > 0
                 ? opts.caf_host + ":" + std::to_string(opts.caf_port)
                 : std::string{"off"});
  auto sig = wait_for_stop_signal(signals);
  if (sig == SIGUSR1) {
    spdlog::critical("the supervision tree terminated on its own; exiting");
    return 1;
  }
  spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::duration<double>{opts.shutdown_timeout_s});
  if (!node->stop(timeout)) {
    // Actors are still running: destroying the actor system now races with
    // them (seen: "pure virtual method called" in remove_link, SIGABRT).
    // Every decision that took effect is committed, exactly as after a
    // kill -9, so leave at once without tearing anything down.
    spdlog::error("supervision tree did not stop within {} s; exiting without "
                  "waiting for it (committed state is in the store and the "
                  "next start resumes from it)",
                  opts.shutdown_timeout_s);
    spdlog::shutdown();
    std::fflush(nullptr);
    std::_Exit(1);
  }
  spdlog::info("node stopped cleanly");
  return 0;
}

} // namespace cerebelum::cli
