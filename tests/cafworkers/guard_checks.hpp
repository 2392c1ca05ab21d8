#pragma once

// What "the node survived" means in the CAF guard tests.

#include <string>

#include "tests/cafworkers/caf_fixture.hpp"

namespace cerebelum::test {

/// The node process still runs and answers the CLI (`workflows`).
void require_node_serves(caf_node& node);

/// A real CAF worker (examples/caf_worker) joins through the CAF port and an
/// execution of its workflow completes with its results.
void require_worker_completes(caf_node& node, const std::string& worker_id);

} // namespace cerebelum::test
