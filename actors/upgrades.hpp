#pragma once

// Upgrades of running workflows: whether each open execution of a workflow
// can continue on a new version of its definition (docs/upgrades.md). The
// check itself is pure (workflow/upgrade_check.hpp); this reads the index
// and the histories for it.

#include <string>

#include <caf/expected.hpp>

#include "actors/engine_api.hpp"
#include "actors/engine_context.hpp"

namespace cerebelum::actors {

/// Loads `definition_text` (`file` names it and picks the format: `.json`
/// is JSON, anything else YAML) and checks every open execution of the
/// workflow it defines against it. Read only. Errors: invalid_argument (the
/// definition, naming the problem), unavailable (the store is away),
/// store_damaged, internal.
caf::expected<upgrade_report>
check_open_executions(engine_context& ctx, const std::string& definition_text,
                      const std::string& file);

} // namespace cerebelum::actors
