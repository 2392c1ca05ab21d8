// The `cerebelum` command: one binary, one subcommand per operation.
//
// Exit codes: 0 ok, 1 failure reported by the node or the command, 2 usage
// error.

#include <CLI/CLI.hpp>

#include <iostream>

#include "src/cli/logging.hpp"
#include "src/cli/node_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Cerebelum: a durable workflow engine", "cerebelum"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  std::string log_level = "info";
  app
    .add_option("--log-level", log_level,
                "Log level: trace, debug, info, warn, err, critical, off")
    ->capture_default_str();

  cerebelum::cli::node_options node_opts;
  auto* node = app.add_subcommand(
    "node", "Run a Cerebelum node until SIGINT or SIGTERM");
  cerebelum::cli::add_node_options(*node, node_opts);

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
  if (!cerebelum::cli::setup_logging(log_level)) {
    std::cerr << "--log-level: unknown level '" << log_level << "'\n";
    return 2;
  }
  if (node->parsed()) return cerebelum::cli::run_node(node_opts);
  return 2;
}
