// The `cerebelum` command: one binary, one subcommand per operation.
//
// Exit codes: 0 ok, 1 failure reported by the node or the command (or the
// node is unreachable), 2 usage error.

#include <CLI/CLI.hpp>

#include <iostream>

#include "src/cli/commands.hpp"
#include "src/cli/logging.hpp"
#include "src/cli/node_command.hpp"

int main(int argc, char** argv) {
  namespace cli = cerebelum::cli;
  CLI::App app{"Cerebelum: a durable workflow engine", "cerebelum"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  std::string log_level = "info";
  app
    .add_option("--log-level", log_level,
                "Log level: trace, debug, info, warn, err, critical, off")
    ->capture_default_str();
  std::string log_format = "text";
  app
    .add_option("--log-format", log_format,
                "Log lines as text, or json (one object per line: time in "
                "UTC, level, logger, thread, message)")
    ->check(CLI::IsMember({"text", "json"}))
    ->capture_default_str();
  cli::global_options global;
  app.add_option("--server", global.server, "The node's gRPC address")
    ->capture_default_str();
  app.add_option("--token", global.token,
                 "Token for a node with --auth token (default: "
                 "$CEREBELUM_TOKEN)");
  app.add_option("--token-file", global.token_file,
                 "File holding the token (e.g. DATA_DIR/admin.token)");
  app.add_option("--tls-ca", global.tls_ca,
                 "Connect with TLS, trusting this PEM CA (the node's name "
                 "in --server is verified)");
  app.add_option("--tls-cert", global.tls_cert,
                 "Client certificate (PEM) for a node that requires one");
  app.add_option("--tls-key", global.tls_key, "Key of --tls-cert (PEM)");

  cli::node_options node_opts;
  auto* node = app.add_subcommand(
    "node", "Run a Cerebelum node until SIGINT or SIGTERM");
  cli::add_node_options(*node, node_opts);
  cli::command_set commands;
  cli::add_start_command(app, global, commands);
  cli::add_read_commands(app, global, commands);
  cli::add_decision_commands(app, global, commands);
  cli::add_dlq_commands(app, global, commands);
  cli::add_upgrade_command(app, global, commands);
  cli::add_token_commands(app, global, commands);
  cli::add_workflow_commands(app, global, commands);
  cli::add_dev_certs_command(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (!cli::setup_logging(log_level, log_format == "json"
                                       ? cli::log_format::json
                                       : cli::log_format::text)) {
    std::cerr << "--log-level: unknown level '" << log_level << "'\n";
    return 2;
  }
  if (node->parsed()) return cli::run_node(node_opts);
  if (auto err = cli::configure_connection(global); !err.empty())
    return cli::usage_error(err);
  auto code = commands.run_parsed();
  return code < 0 ? 2 : code;
}
