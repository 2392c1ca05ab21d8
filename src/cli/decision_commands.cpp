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

/// Options of approve, reject and cancel.
struct decision_options {
  std::string id;
  std::string by;
  std::string reason;
  std::string data;
  bool json = false;
};

/// Prints the execution after a decision.
int report(const char* verb, const admin::ExecutionInfo& info, bool as_json) {
  if (as_json) {
    print_json(api::message_to_json(info));
  } else {
    std::cout << verb << ' ' << info.execution_id() << '\n';
    print_execution(info);
  }
  return 0;
}

int run_approve(const global_options& global, const decision_options& opts) {
  if (auto why = admin_client::missing_by(opts.by); !why.empty())
    return usage_error(why);
  if (!opts.data.empty())
    if (auto data = workflow::parse_json(opts.data, "--data"); !data)
      return usage_error(data.error().message);
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::ApproveRequest req;
  req.set_execution_id(opts.id);
  req.set_by(opts.by);
  req.set_data_json(opts.data);
  admin::ExecutionInfo info;
  auto ctx = admin_client::context();
  auto status = client.stub().Approve(ctx.get(), req, &info);
  if (!status.ok()) return client.fail(status);
  return report("approved", info, opts.json);
}

int run_reject(const global_options& global, const decision_options& opts) {
  if (auto why = admin_client::missing_by(opts.by); !why.empty())
    return usage_error(why);
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::RejectRequest req;
  req.set_execution_id(opts.id);
  req.set_by(opts.by);
  req.set_reason(opts.reason);
  admin::ExecutionInfo info;
  auto ctx = admin_client::context();
  auto status = client.stub().Reject(ctx.get(), req, &info);
  if (!status.ok()) return client.fail(status);
  return report("rejected", info, opts.json);
}

int run_cancel(const global_options& global, const decision_options& opts) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::CancelRequest req;
  req.set_execution_id(opts.id);
  req.set_by(opts.by.empty() ? admin_client::default_by() : opts.by);
  req.set_reason(opts.reason);
  admin::ExecutionInfo info;
  auto ctx = admin_client::context();
  auto status = client.stub().Cancel(ctx.get(), req, &info);
  if (!status.ok()) return client.fail(status);
  return report("cancel requested for", info, opts.json);
}

/// Declares the options all three share.
CLI::App* add_decision(CLI::App& app, const char* name, const char* help,
                       decision_options& opts) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("id", opts.id, "Execution id")->required();
  cmd->add_flag("--json", opts.json, "Print JSON");
  return cmd;
}

} // namespace

void add_decision_commands(CLI::App& app, const global_options& global,
                           command_set& set) {
  auto approve = std::make_shared<decision_options>();
  auto* cmd = add_decision(app, "approve",
                           "Grant the approval an execution awaits", *approve);
  cmd->add_option("--by", approve->by,
                  "Your name (recorded; with a token, a note beside it)");
  cmd->add_option("--data", approve->data,
                  "JSON handed to the workflow (recorded)");
  set.add(cmd, [&global, approve] {
    return run_approve(global, *approve);
  });

  auto reject = std::make_shared<decision_options>();
  cmd = add_decision(app, "reject", "Reject the approval an execution awaits",
                     *reject);
  cmd->add_option("--by", reject->by,
                  "Your name (recorded; with a token, a note beside it)");
  cmd->add_option("--reason", reject->reason, "Why (recorded)")->required();
  set.add(cmd, [&global, reject] {
    return run_reject(global, *reject);
  });

  auto cancel = std::make_shared<decision_options>();
  cmd = add_decision(app, "cancel", "Cancel a running execution", *cancel);
  cmd->add_option("--by", cancel->by,
                  "Your name (recorded; default cli; with a token, a note "
                  "beside it)");
  cmd->add_option("--reason", cancel->reason, "Why (recorded)");
  set.add(cmd, [&global, cancel] {
    return run_cancel(global, *cancel);
  });
}

} // namespace cerebelum::cli
