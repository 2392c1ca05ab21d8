#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "src/bridges/json_convert.hpp"
#include "src/cli/admin_client.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/output.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::cli {

namespace {

struct start_options {
  std::string workflow;
  std::string input = "{}";
  std::string id;
  std::string by;
  std::uint64_t version = 0;
  bool wait = false;
  int timeout_s = 60;
  bool json = false;
};

/// Waits for the execution to finish; fills `info` with the final state.
grpc::Status wait_finished(admin_client& client, const start_options& opts,
                           admin::ExecutionInfo& info) {
  admin::WaitForResultRequest req;
  req.set_execution_id(info.execution_id());
  req.set_timeout_ms(static_cast<std::uint32_t>(opts.timeout_s) * 1000);
  auto ctx = admin_client::context(std::chrono::seconds{opts.timeout_s + 10});
  return client.stub().WaitForResult(ctx.get(), req, &info);
}

int run_start(const global_options& global, const start_options& opts) {
  auto input = workflow::parse_json(opts.input.empty() ? "{}" : opts.input,
                                    "--input");
  if (!input) return usage_error(input.error().message);
  if (!input->is_object())
    return usage_error("--input: expected a JSON object, got '"
                       + workflow::printable(opts.input) + "'");
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::StartExecutionRequest req;
  req.set_workflow(opts.workflow);
  req.set_input_json(workflow::safe_dump(*input));
  req.set_execution_id(opts.id);
  req.set_started_by(opts.by.empty() ? admin_client::default_by() : opts.by);
  req.set_version(opts.version);
  admin::StartExecutionResponse res;
  auto ctx = admin_client::context();
  auto status = client.stub().StartExecution(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  auto info = res.execution();
  if (opts.wait) {
    status = wait_finished(client, opts, info);
    if (!status.ok()) return client.fail(status);
  }
  if (opts.json) {
    print_json(
      {{"created", res.created()}, {"execution", api::message_to_json(info)}});
  } else {
    std::cout << (res.created() ? "started " : "already exists: ")
              << info.execution_id() << '\n';
    print_execution(info);
  }
  bool failed = info.status() == "failed" || info.status() == "cancelled";
  return opts.wait && failed ? 1 : 0;
}

} // namespace

void add_start_command(CLI::App& app, const global_options& global,
                       command_set& set) {
  auto opts = std::make_shared<start_options>();
  auto* cmd = app.add_subcommand(
    "start", "Start an execution of WORKFLOW. With --wait, exits 1 when it "
             "ends failed or cancelled");
  cmd->add_option("workflow", opts->workflow, "Workflow name")->required();
  cmd->add_option("--input", opts->input, "Input, a JSON object")
    ->capture_default_str();
  cmd->add_option("--id", opts->id,
                  "Execution id; starting an existing id returns it");
  cmd->add_option("--by", opts->by, "Who starts it (recorded)");
  cmd->add_option("--version", opts->version,
                  "Version (hash) to start, as `cerebelum workflows` lists "
                  "it; default: the latest");
  cmd->add_flag("--wait", opts->wait, "Wait until the execution finishes");
  cmd->add_option("--timeout", opts->timeout_s, "Seconds --wait waits (max 60)")
    ->check(CLI::Range(1, 60))
    ->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print JSON");
  set.add(cmd, [&global, opts] {
    return run_start(global, *opts);
  });
}

} // namespace cerebelum::cli
