#pragma once

// Upgrades of running workflows: whether each open execution of a workflow
// can continue on a new version of its definition (docs/upgrades.md). The
// check itself is pure (workflow/upgrade_check.hpp); this reads the index
// and the histories for it.

#include <string>

#include <caf/expected.hpp>

#include "actors/engine_api.hpp"
#include "actors/engine_context.hpp"
#include "workflow/definition.hpp"

namespace cerebelum::actors {

/// Loads `definition_text` (`file` names it and picks the format: `.json`
/// is JSON, anything else YAML). Errors: invalid_argument naming the
/// problem.
caf::expected<workflow::definition>
load_candidate(const std::string& definition_text, const std::string& file);

/// Checks every open execution of `def`'s workflow against it. Read only.
/// Errors: unavailable (the store is away), store_damaged, internal.
caf::expected<upgrade_report>
check_open_executions(engine_context& ctx, const workflow::definition& def);

/// One execution `id` against `def` (its index row's `version`).
caf::expected<upgrade_check_view>
check_execution(engine_context& ctx, const workflow::definition& def,
                const std::string& id, std::uint64_t version);

/// Loads `definition_text` (`file` names it and picks the format: `.json`
/// is JSON, anything else YAML) and checks every open execution of the
/// workflow it defines against it. Read only. Errors: invalid_argument (the
/// definition, naming the problem), unavailable (the store is away),
/// store_damaged, internal.
caf::expected<upgrade_report>
check_open_executions(engine_context& ctx, const std::string& definition_text,
                      const std::string& file);

} // namespace cerebelum::actors
