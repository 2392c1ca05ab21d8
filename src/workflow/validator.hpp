#pragma once

#include <vector>

#include "src/workflow/definition.hpp"

namespace cerebelum::workflow {

/// Checks a definition's structure and returns every problem found (empty
/// when valid): unknown or duplicate names, bad branch/goto targets,
/// unreachable stages, cycles that no branch can leave, invalid durations
/// and retry policies, steps missing what their kind needs, and
/// expressions reading `steps.x` where x cannot have run yet.
[[nodiscard]] std::vector<diagnostic> validate(const definition& def);

/// Whether `name` can be a step name (an identifier, not reserved).
[[nodiscard]] bool is_valid_name(std::string_view name);

} // namespace cerebelum::workflow
