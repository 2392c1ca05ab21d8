// `cerebelum dlq list|retry`: the dead letters of remote task steps.

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "src/bridges/json_convert.hpp"
#include "src/cli/admin_client.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/output.hpp"

namespace cerebelum::cli {

namespace {

struct dlq_list_options {
  std::string queue;
  unsigned page_size = 0;
  std::string page_token;
  bool json = false;
};

struct dlq_retry_options {
  std::int64_t id = 0;
  std::string by;
  bool json = false;
};

int run_dlq_list(const global_options& global, const dlq_list_options& opts) {
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::ListDeadLettersRequest req;
  req.set_queue(opts.queue);
  req.set_page_size(opts.page_size);
  req.set_page_token(opts.page_token);
  admin::ListDeadLettersResponse res;
  auto ctx = admin_client::context();
  auto status = client.stub().ListDeadLetters(ctx.get(), req, &res);
  if (!status.ok()) return client.fail(status);
  if (opts.json) {
    print_json(api::message_to_json(res));
    return 0;
  }
  if (res.dead_letters().empty()) std::cout << "no dead letters\n";
  for (auto& d : res.dead_letters())
    std::cout << d.id() << "  " << d.execution_id() << "  " << d.workflow()
              << '/' << d.step() << "  queue " << d.queue() << "  attempt "
              << d.attempt() << "  " << d.error().kind() << ": "
              << d.error().message() << '\n';
  if (!res.next_page_token().empty())
    std::cout << "more: --page-token " << res.next_page_token() << '\n';
  return 0;
}

int run_dlq_retry(const global_options& global, const dlq_retry_options& opts) {
  if (auto why = admin_client::missing_by(opts.by); !why.empty())
    return usage_error(why);
  admin_client client{global.server};
  if (!client.connect()) return 1;
  admin::RetryDeadLetterRequest req;
  req.set_id(opts.id);
  req.set_by(opts.by);
  admin::ExecutionInfo info;
  auto ctx = admin_client::context();
  auto status = client.stub().RetryDeadLetter(ctx.get(), req, &info);
  if (!status.ok()) return client.fail(status);
  if (opts.json) {
    print_json(api::message_to_json(info));
    return 0;
  }
  std::cout << "retried dead letter " << opts.id << ": execution "
            << info.execution_id() << " resumed\n";
  print_execution(info);
  return 0;
}

} // namespace

void add_dlq_commands(CLI::App& app, const global_options& global,
                      command_set& set) {
  auto* dlq = app.add_subcommand(
    "dlq", "Dead letters: remote tasks whose failure failed their execution");
  dlq->require_subcommand(1);

  auto lopts = std::make_shared<dlq_list_options>();
  auto* list = dlq->add_subcommand("list", "List dead letters, oldest first");
  list->add_option("--queue", lopts->queue, "Only this task queue");
  list->add_option("--page-size", lopts->page_size, "1..1000 (default 100)")
    ->check(CLI::Range(1, 1000));
  list->add_option("--page-token", lopts->page_token,
                   "Continue where a previous page ended");
  list->add_flag("--json", lopts->json, "Print JSON");
  set.add(list, [&global, lopts] {
    return run_dlq_list(global, *lopts);
  });

  auto ropts = std::make_shared<dlq_retry_options>();
  auto* retry = dlq->add_subcommand(
    "retry", "Resume the failed execution of a dead letter: its step gets a "
             "new attempt with a fresh retry budget");
  retry->add_option("id", ropts->id, "Dead letter id (from dlq list)")
    ->required()
    ->check(CLI::PositiveNumber);
  retry->add_option("--by", ropts->by,
                    "Your name, recorded (with a token, a note beside it)");
  retry->add_flag("--json", ropts->json, "Print JSON");
  set.add(retry, [&global, ropts] {
    return run_dlq_retry(global, *ropts);
  });
}

} // namespace cerebelum::cli
