#pragma once

// Conversions between the engine's views (actors/engine_api.hpp) and the
// AdminService messages (proto/admin.proto).

#include "actors/engine_api.hpp"
#include "admin.pb.h"

namespace cerebelum::api {

/// Fills an `ExecutionInfo` from `view`; JSON values become JSON text.
admin::ExecutionInfo to_proto(const actors::execution_view& view);

/// Fills a `WorkflowInfo` from `view`.
admin::WorkflowInfo to_proto(const actors::workflow_view& view);
admin::WorkflowOwner to_proto(const actors::workflow_owner_view& view);
admin::CheckUpgradeResponse to_proto(const actors::upgrade_report& report);

} // namespace cerebelum::api
