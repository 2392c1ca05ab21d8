#include "src/bridges/proto_convert.hpp"

#include "workflow/safe_text.hpp"

namespace cerebelum::api {

namespace {

/// Dumps `value`; null (unset) becomes the empty text.
std::string json_text(const actors::json& value) {
  return value.is_null() ? std::string{} : workflow::safe_dump(value);
}

} // namespace

admin::ExecutionInfo to_proto(const actors::execution_view& view) {
  admin::ExecutionInfo info;
  info.set_execution_id(view.execution_id);
  info.set_workflow(view.workflow);
  info.set_workflow_version(view.workflow_version);
  info.set_status(eventstore::to_string(view.status));
  info.set_created_at_ms(view.created_at_ms);
  info.set_updated_at_ms(view.updated_at_ms);
  info.set_input_json(json_text(view.input));
  info.set_result_json(json_text(view.result));
  if (view.error) {
    auto* err = info.mutable_error();
    err->set_kind(view.error->kind);
    err->set_message(view.error->message);
    err->set_details_json(json_text(view.error->details));
    err->set_retryable(view.error->retryable);
  }
  if (view.wake_at_ms) info.set_wake_at_ms(*view.wake_at_ms);
  info.set_awaiting_step(view.awaiting_step);
  info.set_approval_data_json(json_text(view.approval_data));
  info.set_history_length(view.history_length);
  info.set_phase(view.phase);
  info.set_stuck_reason(view.stuck_reason);
  return info;
}

admin::WorkflowInfo to_proto(const actors::workflow_view& view) {
  admin::WorkflowInfo info;
  info.set_name(view.name);
  info.set_version(view.version);
  info.set_source(view.source);
  info.set_loaded(view.loaded);
  info.set_latest(view.latest);
  info.set_stored(view.stored);
  info.set_stored_at_ms(view.stored_at_ms);
  info.set_open_executions(view.open_executions);
  info.set_owner(view.owner);
  return info;
}

admin::WorkflowOwner to_proto(const actors::workflow_owner_view& view) {
  admin::WorkflowOwner out;
  out.set_name(view.name);
  out.set_owner(view.owner);
  out.set_recorded(view.stored.has_value());
  if (view.stored) {
    out.set_recorded_owner(view.stored->owner);
    out.set_claimed_at_ms(view.stored->claimed_at_ms);
    out.set_previous_owner(view.stored->previous_owner);
    out.set_replaced_by(view.stored->replaced_by);
    out.set_replaced_at_ms(view.stored->replaced_at_ms);
  }
  return out;
}

admin::CheckUpgradeResponse to_proto(const actors::upgrade_report& report) {
  admin::CheckUpgradeResponse out;
  out.set_workflow(report.workflow);
  out.set_version(report.version);
  std::uint32_t compatible = 0;
  std::uint32_t migrated = 0;
  for (const auto& v : report.executions) {
    auto* e = out.add_executions();
    e->set_execution_id(v.execution_id);
    e->set_version(v.version);
    e->set_compatible(v.compatible);
    e->set_migrated(v.migrated);
    e->set_reason(v.reason);
    if (v.migrated) ++migrated;
    if (v.compatible) {
      ++compatible;
      continue;
    }
    e->set_seq(v.seq);
    e->set_event_type(v.event_type);
    e->set_step(v.step);
  }
  out.set_compatible(compatible);
  out.set_migrated(migrated);
  out.set_incompatible(static_cast<std::uint32_t>(report.executions.size())
                       - compatible);
  return out;
}

} // namespace cerebelum::api
