#pragma once

// The operator subcommands of `cerebelum` (everything but `node`). Each
// command group lives in its own file and registers its subcommands here.

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
} // namespace CLI

namespace cerebelum::cli {

/// Options every operator command shares.
struct global_options {
  /// The node's AdminService, HOST:PORT.
  std::string server = "127.0.0.1:9740";
  /// A token for a node with --auth token (else $CEREBELUM_TOKEN).
  std::string token;
  /// A file holding the token (e.g. DATA_DIR/admin.token).
  std::string token_file;
  /// TLS: the CA that signed the node's certificate; empty: no TLS.
  std::string tls_ca;
  /// Mutual TLS: the client's certificate and key.
  std::string tls_cert;
  std::string tls_key;
};

/// The registered subcommands and what runs each.
class command_set {
 public:
  using runner = std::function<int()>;

  void add(CLI::App* cmd, runner run) {
    commands_.emplace_back(cmd, std::move(run));
  }

  /// Runs the parsed subcommand; returns its exit code, or -1 when none of
  /// these was parsed.
  int run_parsed() const;

 private:
  std::vector<std::pair<CLI::App*, runner>> commands_;
};

/// `start WORKFLOW [--input JSON] [--id ID] [--wait] [--by NAME]`.
void add_start_command(CLI::App& app, const global_options& global,
                       command_set& set);

/// `list`, `show ID [--history]`, `workflows`.
void add_read_commands(CLI::App& app, const global_options& global,
                       command_set& set);

/// `approve`, `reject`, `cancel`.
void add_decision_commands(CLI::App& app, const global_options& global,
                           command_set& set);

/// `dlq list [--queue Q]`, `dlq retry ID --by NAME`.
void add_dlq_commands(CLI::App& app, const global_options& global,
                      command_set& set);

/// `check-upgrade FILE [--json]`.
void add_upgrade_command(CLI::App& app, const global_options& global,
                         command_set& set);

/// `token create|list|revoke` (docs/security.md).
void add_token_commands(CLI::App& app, const global_options& global,
                        command_set& set);

/// `workflow owner NAME`, `workflow transfer NAME --to TOKEN_NAME`
/// (docs/security.md).
void add_workflow_commands(CLI::App& app, const global_options& global,
                           command_set& set);

/// `dev-certs DIR`: a local CA and node certificate for trying TLS.
void add_dev_certs_command(CLI::App& app, command_set& set);

/// Applies the connection options (token, TLS files) for every client;
/// returns a usage error message or "".
std::string configure_connection(const global_options& global);

/// Exit code of a usage error found after parsing (e.g. --input is not
/// JSON); prints `message` to stderr.
int usage_error(const std::string& message);

} // namespace cerebelum::cli
