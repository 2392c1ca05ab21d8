#include "actors/upgrades.hpp"

#include "actors/errc.hpp"
#include "actors/store_health.hpp"
#include "eventstore/codec.hpp"
#include "workflow/loader.hpp"
#include "workflow/safe_text.hpp"
#include "workflow/upgrade_check.hpp"

namespace cerebelum::actors {

namespace {

caf::error from_store(engine_context& ctx, const eventstore::error& err,
                      const std::string& what) {
  ctx.health().failed(err);
  if (is_outage(err))
    return make_error(errc::unavailable, what + ": the store is unavailable ("
                                           + eventstore::to_string(err)
                                           + "); retry later");
  return make_error(is_store_damage(err) ? errc::store_damaged : errc::internal,
                    what + ": " + eventstore::to_string(err));
}

} // namespace

caf::expected<upgrade_check_view>
check_execution(engine_context& ctx, const workflow::definition& def,
                const std::string& id, std::uint64_t version) {
  upgrade_check_view view;
  view.execution_id = id;
  view.version = version;
  auto history = eventstore::history_of(ctx.store(), id);
  if (!history) {
    if (is_outage(history.err()))
      return from_store(ctx, history.err(), "cannot read the history of " + id);
    view.reason = "its history cannot be read: "
                  + eventstore::to_string(history.err());
    return view;
  }
  if (auto d = workflow::check_upgrade(def, id, *history)) {
    view.seq = d->seq;
    view.event_type = std::move(d->event_type);
    view.step = std::move(d->step);
    view.reason = std::move(d->reason);
  } else {
    view.compatible = true;
  }
  return view;
}

caf::expected<workflow::definition>
load_candidate(const std::string& definition_text, const std::string& file) {
  auto name = file.empty() ? std::string{"<request>"} : file;
  auto json_file = name.size() > 5
                   && name.compare(name.size() - 5, 5, ".json") == 0;
  auto def = json_file ? workflow::load_json_text(definition_text, name)
                       : workflow::load_yaml(definition_text, name);
  if (!def)
    return make_error(errc::invalid_argument,
                      "workflow file " + workflow::printable(name) + ": "
                        + def.error().to_string());
  return std::move(*def);
}

caf::expected<upgrade_report>
check_open_executions(engine_context& ctx, const workflow::definition& def) {
  upgrade_report report{def.name, def.version_hash, {}};
  std::string token;
  do {
    auto page = ctx.store().open_executions(1000, token);
    if (!page)
      return from_store(ctx, page.err(), "cannot list the open executions");
    for (auto& row : page->rows) {
      if (row.workflow != def.name) continue;
      auto view = check_execution(ctx, def, row.execution_id,
                                  row.workflow_version);
      if (!view) return std::move(view.error());
      report.executions.push_back(std::move(*view));
    }
    token = page->next_page_token;
  } while (!token.empty());
  return report;
}

caf::expected<upgrade_report>
check_open_executions(engine_context& ctx, const std::string& definition_text,
                      const std::string& file) {
  auto def = load_candidate(definition_text, file);
  if (!def) return std::move(def.error());
  return check_open_executions(ctx, *def);
}

} // namespace cerebelum::actors
