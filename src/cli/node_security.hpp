#pragma once

// The node's secure defaults (docs/security.md): what it refuses to expose,
// the permissions of its data directory and the first admin token.

#include <optional>
#include <string>

#include "src/cli/node_command.hpp"

namespace cerebelum::eventstore {
class event_store;
} // namespace cerebelum::eventstore

namespace cerebelum::cli {

/// Whether `host` (of HOST:PORT) is a loopback address or name.
bool is_loopback_host(const std::string& host);

/// Why the node must not start with `opts`: a listener beyond loopback
/// without TLS and tokens, or a port that cannot check tokens on a node
/// that requires them; the message names the flags to add. Nothing with
/// `--insecure` (the node warns instead) or when all is well.
std::optional<std::string> exposure_problem(const node_options& opts);

/// What `--insecure` lets through (for the warning at start and /health);
/// empty when nothing.
std::string insecure_exposure(const node_options& opts);

/// Makes the node's files private to its user: umask 077 for what it
/// creates, the data directory 0700 and the files in it without group and
/// other permissions. Returns a warning when a permission could not be set.
std::optional<std::string> make_data_dir_private(const std::string& dir);

/// On a node with tokens: when the store holds no usable admin token, makes
/// one named "admin" and writes its text to DIR/admin.token (0600). Returns
/// what to log, or an error message.
std::string bootstrap_admin_token(eventstore::event_store& store,
                                  const std::string& data_dir, bool& failed);

} // namespace cerebelum::cli
