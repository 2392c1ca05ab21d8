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

using json = nlohmann::json;

struct list_options {
  std::string status;
  std::string workflow;
  unsigned page_size = 0;
  std::string page_token;
  bool stuck = false;
  bool json = false;
};

struct show_options {
  std::string id;
  bool history = false;
  bool json = false;
};

int run_list(const global_options& global, const list_options& opts) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::ListExecutionsRequest req;
  req.set_status(opts.status);
  req.set_workflow(opts.workflow);
  req.set_page_size(opts.page_size);
  req.set_page_token(opts.page_token);
  req.set_stuck(opts.stuck);
  admin::ListExecutionsResponse res;
  auto ctx = admin_client::context();
  auto status = client.stub().ListExecutions(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  if (opts.json) {
    print_json(api::message_to_json(res));
    return 0;
  }
  print_execution_table(res.executions());
  if (!res.next_page_token().empty())
    std::cout << "more: --page-token " << res.next_page_token() << '\n';
  return 0;
}

int run_show(const global_options& global, const show_options& opts) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::DescribeExecutionRequest req;
  req.set_execution_id(opts.id);
  admin::ExecutionInfo info;
  auto ctx = admin_client::context();
  auto status = client.stub().DescribeExecution(ctx.get(), req, &info);
  if (!status.ok()) return client.fail(status);
  admin::GetHistoryResponse history;
  if (opts.history) {
    admin::GetHistoryRequest hreq;
    hreq.set_execution_id(opts.id);
    auto hctx = admin_client::context();
    status = client.stub().GetHistory(hctx.get(), hreq, &history);
    if (!status.ok()) return client.fail(status);
  }
  if (opts.json) {
    auto out = api::message_to_json(info);
    if (opts.history) {
      out["history"] = json::array();
      for (auto& ev : history.events())
        out["history"].push_back(api::event_to_json(ev));
    }
    print_json(out);
    return 0;
  }
  print_execution(info);
  if (opts.history) {
    std::cout << "history:\n";
    print_history(history.events());
  }
  return 0;
}

struct events_options {
  std::string id;
  std::int64_t from_seq = 0;
  bool follow = false;
  bool json = false;
};

/// `events ID`: the history from --from-seq, one event per line (JSON
/// lines with --json); with --follow, then each event as it is committed,
/// until the execution's terminal event.
int run_events(const global_options& global, const events_options& opts) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  auto show = [&opts](const events::Event& ev) {
    if (opts.json)
      std::cout << workflow::safe_dump(api::event_to_json(ev)) << '\n';
    else
      print_event(ev);
    // A follower reads each line as it comes (a pipe is fully buffered).
    std::cout.flush();
  };
  if (!opts.follow) {
    admin::GetHistoryRequest req;
    req.set_execution_id(opts.id);
    req.set_from_seq(opts.from_seq);
    admin::GetHistoryResponse res;
    auto ctx = admin_client::context();
    auto status = client.stub().GetHistory(ctx.get(), req, &res);
    if (!status.ok()) return client.fail(status);
    for (auto& ev : res.events())
      show(ev);
    return 0;
  }
  admin::FollowExecutionRequest req;
  req.set_execution_id(opts.id);
  req.set_from_seq(opts.from_seq);
  // No deadline: it follows until the execution ends (or Ctrl-C).
  grpc::ClientContext ctx;
  auto reader = client.stub().FollowExecution(&ctx, req);
  events::Event ev;
  while (reader->Read(&ev))
    show(ev);
  auto status = reader->Finish();
  if (!status.ok()) return client.fail(status);
  return 0;
}

int run_workflows(const global_options& global, bool as_json) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::ListWorkflowsResponse res;
  auto ctx = admin_client::context();
  auto status = client.stub().ListWorkflows(ctx.get(), {}, &res);
  if (!status.ok()) return client.fail(status);
  if (as_json) {
    print_json(api::message_to_json(res));
    return 0;
  }
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"NAME", "VERSION", "LATEST", "LOADED", "STORED", "OPEN",
                   "SOURCE", "OWNER"});
  for (auto& wf : res.workflows())
    cells.push_back({wf.name(), std::to_string(wf.version()),
                     wf.latest() ? "latest" : "", wf.loaded() ? "yes" : "no",
                     wf.stored() ? format_time(wf.stored_at_ms()) : "no",
                     std::to_string(wf.open_executions()), wf.source(),
                     wf.owner().empty() ? "-" : wf.owner()});
  print_table(cells);
  return 0;
}

/// Exit code of `health` when the node answers but its store does not.
constexpr int store_unavailable_exit = 3;

int run_health(const global_options& global, bool as_json) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::HealthResponse res;
  auto ctx = admin_client::context();
  auto status = client.stub().Health(ctx.get(), {}, &res);
  if (!status.ok()) return client.fail(status);
  if (as_json) {
    print_json(api::json{{"store_available", res.store_available()},
                         {"store_unavailable_since_ms",
                          res.store_unavailable_since_ms()},
                         {"store_error", res.store_error()},
                         {"waiting", res.waiting()},
                         {"outages", res.outages()}});
  } else if (res.store_available()) {
    std::cout << "store: available (" << res.outages()
              << " outage(s) since the node started)\n";
  } else {
    std::cout << "store: UNAVAILABLE since " << res.store_unavailable_since_ms()
              << " ms since the epoch; " << res.waiting()
              << " operation(s) wait; last error: " << res.store_error()
              << '\n';
  }
  return res.store_available() ? 0 : store_unavailable_exit;
}

void add_list(CLI::App& app, const global_options& global, command_set& set) {
  auto opts = std::make_shared<list_options>();
  auto* cmd = app.add_subcommand("list", "List executions, newest first");
  cmd
    ->add_option("--status", opts->status,
                 "running, sleeping, awaiting_approval, completed, failed or "
                 "cancelled")
    ->check(CLI::IsMember({"running", "sleeping", "awaiting_approval",
                           "completed", "failed", "cancelled"}));
  cmd->add_option("--workflow", opts->workflow, "Only this workflow");
  cmd->add_option("--page-size", opts->page_size, "1..1000 (default 100)")
    ->check(CLI::Range(1, 1000));
  cmd->add_option("--page-token", opts->page_token,
                  "Continue where a previous page ended");
  cmd->add_flag("--stuck", opts->stuck,
                "Only executions that cannot make progress (definition "
                "missing, damaged history, sleeping > 60 s past its wake "
                "time), with why");
  cmd->add_flag("--json", opts->json, "Print JSON");
  set.add(cmd, [&global, opts] {
    return run_list(global, *opts);
  });
}

void add_show(CLI::App& app, const global_options& global, command_set& set) {
  auto opts = std::make_shared<show_options>();
  auto* cmd = app.add_subcommand("show", "Show an execution");
  cmd->add_option("id", opts->id, "Execution id")->required();
  cmd->add_flag("--history", opts->history, "Also print its history");
  cmd->add_flag("--json", opts->json, "Print JSON");
  set.add(cmd, [&global, opts] {
    return run_show(global, *opts);
  });
}

void add_events(CLI::App& app, const global_options& global, command_set& set) {
  auto opts = std::make_shared<events_options>();
  auto* cmd = app.add_subcommand(
    "events", "Print an execution's history, one event per line; with "
              "--follow, then each event as it is recorded, until the "
              "execution ends");
  cmd->add_option("id", opts->id, "Execution id")->required();
  cmd->add_option("--from-seq", opts->from_seq, "Start at this event")
    ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--follow,-f", opts->follow,
                "Keep printing events as they are recorded until the "
                "execution completes, fails or is cancelled");
  cmd->add_flag("--json", opts->json, "Print one JSON object per event");
  set.add(cmd, [&global, opts] {
    return run_events(global, *opts);
  });
}

} // namespace

void add_read_commands(CLI::App& app, const global_options& global,
                       command_set& set) {
  add_list(app, global, set);
  add_show(app, global, set);
  add_events(app, global, set);
  auto as_json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
    "workflows",
    "List every version of every workflow the node has loaded (--workflows, "
    "workers, builder) or its store holds: its source, whether it is loaded, "
    "which is the latest (what `start` uses without --version), when it was "
    "stored and how many open executions run on it");
  cmd->add_flag("--json", *as_json, "Print JSON");
  set.add(cmd, [&global, as_json] {
    return run_workflows(global, *as_json);
  });
  auto health_json = std::make_shared<bool>(false);
  auto* health = app.add_subcommand(
    "health", "Whether the node's store answers (exit 3 when it does not)");
  health->add_flag("--json", *health_json, "Print JSON");
  set.add(health, [&global, health_json] {
    return run_health(global, *health_json);
  });
}

} // namespace cerebelum::cli
