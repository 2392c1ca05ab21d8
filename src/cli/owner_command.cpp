// `cerebelum workflow owner NAME` and `cerebelum workflow transfer NAME --to
// TOKEN_NAME`: who owns a workflow name and moving it to another token's
// workers (role admin; docs/security.md, "Workflow ownership").

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "src/bridges/json_convert.hpp"
#include "src/cli/admin_client.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/output.hpp"

namespace cerebelum::cli {

namespace {

struct owner_options {
  std::string name;
  std::string to;
  bool json = false;
};

/// One line for the owner, then the store's record of it.
void print_owner(const admin::WorkflowOwner& o) {
  std::cout << o.name() << "  owner " << o.owner() << '\n';
  if (!o.recorded()) {
    std::cout << "  not recorded in the store\n";
    return;
  }
  std::cout << "  recorded owner " << o.recorded_owner() << " since "
            << format_time(o.claimed_at_ms()) << '\n';
  if (o.replaced_at_ms() != 0)
    std::cout << "  replaced " << format_time(o.replaced_at_ms()) << " by "
              << o.replaced_by() << " (owner before: "
              << (o.previous_owner().empty() ? "none" : o.previous_owner())
              << ")\n";
}

int finish(const admin::WorkflowOwner& res, bool json) {
  if (json)
    print_json(api::message_to_json(res));
  else
    print_owner(res);
  return 0;
}

int run_owner(const global_options& global, const owner_options& opts) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::GetWorkflowOwnerRequest req;
  req.set_name(opts.name);
  admin::WorkflowOwner res;
  auto ctx = admin_client::context();
  auto status = client.stub().GetWorkflowOwner(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  return finish(res, opts.json);
}

int run_transfer(const global_options& global, const owner_options& opts) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::TransferWorkflowRequest req;
  req.set_name(opts.name);
  req.set_to(opts.to);
  admin::WorkflowOwner res;
  auto ctx = admin_client::context();
  auto status = client.stub().TransferWorkflow(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  return finish(res, opts.json);
}

} // namespace

void add_workflow_commands(CLI::App& app, const global_options& global,
                           command_set& set) {
  auto* wf = app.add_subcommand(
    "workflow", "Who owns a workflow name, and moving it (role admin)");
  wf->require_subcommand(1);

  auto owner = std::make_shared<owner_options>();
  auto* o = wf->add_subcommand(
    "owner", "Who owns a workflow name: on this node and in the store, with "
             "its last change of hands");
  o->add_option("name", owner->name, "The workflow's name")->required();
  o->add_flag("--json", owner->json, "Print JSON");
  set.add(o, [&global, owner] {
    return run_owner(global, *owner);
  });

  auto transfer = std::make_shared<owner_options>();
  auto* t = wf->add_subcommand(
    "transfer", "Give a workflow name to the workers of another token "
                "(recorded with who did it)");
  t->add_option("name", transfer->name, "The workflow's name")->required();
  t->add_option("--to", transfer->to,
                "The --name of a live worker or admin token")
    ->required();
  t->add_flag("--json", transfer->json, "Print JSON");
  set.add(t, [&global, transfer] {
    return run_transfer(global, *transfer);
  });
}

} // namespace cerebelum::cli
