#pragma once

#include <vector>

#include "workflow/definition.hpp"

namespace cerebelum::workflow {

/// Checks a definition's structure and returns every problem found (empty
/// when valid): unknown or duplicate names, bad branch/goto targets,
/// unreachable stages, cycles that no branch can leave, invalid durations
/// and retry policies, steps missing what their kind needs, expressions
/// reading `steps.x` where x cannot have run yet, names outside their
/// character rules, text that is not UTF-8 and more than
/// `limits::max_steps` steps.
[[nodiscard]] std::vector<diagnostic> validate(const definition& def);

/// Whether `name` can be a step name (an identifier of at most
/// `limits::max_name_bytes`, not reserved).
[[nodiscard]] bool is_valid_name(std::string_view name);

/// Whether `name` can be a workflow name: 1 to `limits::max_name_bytes`
/// letters, digits, '.', '_' or '-', starting with a letter or a digit. The
/// same rule, up to `limits::max_version_bytes`, holds for version labels.
[[nodiscard]] bool is_valid_workflow_name(std::string_view name);

} // namespace cerebelum::workflow
