// `cerebelum check-upgrade FILE`: which open executions of a workflow could
// continue on a new version of its definition (docs/upgrades.md).
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

struct upgrade_options {
  std::string file;
  bool json = false;
};

/// "seq 3 step_scheduled 'prepare': why".
std::string divergence(const admin::ExecutionUpgrade& e) {
  std::string out = "seq " + std::to_string(e.seq()) + " " + e.event_type();
  if (!e.step().empty()) out += " '" + e.step() + "'";
  return out + ": " + e.reason();
}

int run_check_upgrade(const global_options& global,
                      const upgrade_options& opts) {
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
  admin::CheckUpgradeResponse res;
  auto ctx = admin_client::context(std::chrono::minutes{5});
  auto status = client.stub().CheckUpgrade(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  if (opts.json) {
    print_json(api::message_to_json(res));
  } else {
    std::vector<std::vector<std::string>> cells;
    cells.push_back(
      {"EXECUTION", "VERSION", "COMPATIBLE", "FIRST DIVERGING EVENT"});
    for (const auto& e : res.executions())
      cells.push_back({e.execution_id(), std::to_string(e.version()),
                       e.compatible() ? "yes" : "no",
                       e.compatible() ? "" : divergence(e)});
    print_table(cells);
    std::cout << "workflow " << res.workflow() << ", new version "
              << res.version() << ": " << res.executions_size()
              << " open execution(s), " << res.compatible() << " compatible, "
              << res.incompatible() << " incompatible\n";
  }
  return res.incompatible() > 0 ? incompatible_exit : 0;
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
    "only. Exit 0 when all are compatible, 4 when any is not, 2 for a bad "
    "FILE");
  cmd->add_option("file", opts->file, "The new definition (.yaml, .yml, .json)")
    ->required();
  cmd->add_flag("--json", opts->json, "Print JSON");
  set.add(cmd, [&global, opts] {
    return run_check_upgrade(global, *opts);
  });
}

} // namespace cerebelum::cli
