// `cerebelum check-upgrade FILE [--migrate --by NAME]`: which open
// executions of a workflow could continue on a new version of its
// definition, and moving them to it (docs/upgrades.md).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "src/bridges/json_convert.hpp"
#include "src/cli/admin_client.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/output.hpp"
#include "workflow/loader.hpp"

namespace cerebelum::cli {

namespace {

/// Exit code of `check-upgrade` when an execution is not compatible.
constexpr int incompatible_exit = 4;
/// `--migrate`: a compatible execution could not be moved (the node says
/// why; running the command again moves what is left).
constexpr int not_migrated_exit = 5;

struct upgrade_options {
  std::string file;
  bool json = false;
  bool migrate = false;
  std::string by;
};

/// "seq 3 step_scheduled 'prepare': why".
std::string divergence(const admin::ExecutionUpgrade& e) {
  std::string out = "seq " + std::to_string(e.seq()) + " " + e.event_type();
  if (!e.step().empty()) out += " '" + e.step() + "'";
  return out + ": " + e.reason();
}

/// The last column of a row: why it is not compatible, or (migrate) why a
/// compatible one was not moved.
std::string outcome(const admin::ExecutionUpgrade& e, bool migrate) {
  if (!e.compatible()) return divergence(e);
  if (!migrate) return "";
  return e.migrated() ? "migrated" : e.reason();
}

int run_check_upgrade(const global_options& global,
                      const upgrade_options& opts) {
  if (opts.migrate && opts.by.empty() && !admin_client::by_optional())
    return usage_error("--migrate needs --by NAME (your name, recorded) when "
                       "the CLI has neither a token nor a client certificate");
  // The file is checked here as `node --workflows` checks its files, so a
  // bad one is named before anything is asked of the node.
  if (auto def = workflow::load_file(opts.file); !def)
    return usage_error("workflow file " + opts.file
                       + " is invalid: " + def.error().to_string());
  std::ifstream in{opts.file, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::CheckUpgradeRequest req;
  req.set_definition(text.str());
  // The node needs the name for the format (.json or YAML); the path may be
  // longer than a name the API takes, and was checked here already.
  req.set_file(std::filesystem::path{opts.file}.filename().string());
  req.set_migrate(opts.migrate);
  req.set_by(opts.by);
  admin::CheckUpgradeResponse res;
  auto ctx = admin_client::context(std::chrono::minutes{5});
  auto status = client.stub().CheckUpgrade(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  if (opts.json) {
    print_json(api::message_to_json(res));
  } else {
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"EXECUTION", "VERSION", "COMPATIBLE",
                     opts.migrate ? "OUTCOME" : "FIRST DIVERGING EVENT"});
    for (const auto& e : res.executions())
      cells.push_back({e.execution_id(), std::to_string(e.version()),
                       e.compatible() ? "yes" : "no",
                       outcome(e, opts.migrate)});
    print_table(cells);
    std::cout << "workflow " << res.workflow() << ", new version "
              << res.version() << ": " << res.executions_size()
              << " open execution(s), " << res.compatible() << " compatible, "
              << res.incompatible() << " incompatible";
    if (opts.migrate) std::cout << ", " << res.migrated() << " migrated";
    std::cout << "\n";
  }
  if (res.incompatible() > 0) return incompatible_exit;
  for (const auto& e : res.executions())
    if (opts.migrate && !e.migrated() && e.version() != res.version())
      return not_migrated_exit;
  return 0;
}

} // namespace

void add_upgrade_command(CLI::App& app, const global_options& global,
                         command_set& set) {
  auto opts = std::make_shared<upgrade_options>();
  auto* cmd = app.add_subcommand(
    "check-upgrade",
    "Replay every open execution of the workflow FILE defines against it and "
    "report, per execution, whether it could continue on this version and, "
    "if not, the first event that diverges (rules: docs/upgrades.md). Read "
    "only unless --migrate, which moves every compatible one to this version "
    "(recorded with --by). Exit 0 when all are compatible (and, with "
    "--migrate, moved), 4 when any is not compatible, 5 when a compatible "
    "one could not be moved, 2 for a bad FILE");
  cmd->add_option("file", opts->file, "The new definition (.yaml, .yml, .json)")
    ->required();
  auto* migrate = cmd->add_flag(
    "--migrate", opts->migrate,
    "Move every compatible open execution to this version (each checked "
    "again by its actor; recorded as execution_migrated)");
  cmd
    ->add_option("--by", opts->by,
                 "Your name (recorded; needed by --migrate without a token "
                 "or client certificate, a note beside it with one)")
    ->needs(migrate);
  cmd->add_flag("--json", opts->json, "Print JSON");
  set.add(cmd, [&global, opts] {
    return run_check_upgrade(global, *opts);
  });
}

} // namespace cerebelum::cli
