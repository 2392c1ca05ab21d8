#pragma once

// Helpers of engine_bench: workflows, functions, bulk creation of sleepers
// and RSS.

#include <cstddef>
#include <filesystem>
#include <memory>

#include "actors/function_registry.hpp"

namespace cerebelum::bench {

/// Writes the benchmark workflows (three_steps, three_steps_pool, nap) into
/// `dir`.
void write_bench_workflows(const std::filesystem::path& dir);

/// n = i + 1, n * 2, n + 3: b.inc, b.double, b.add3 run on the execution's
/// actor (three_steps), bp.inc, bp.double, bp.add3 on the call pool
/// (three_steps_pool).
std::shared_ptr<actors::function_registry> bench_functions();

/// Writes `count` executions of `nap` that sleep `sleep_ms` into the SQLite
/// store of `data_dir` directly (what a node leaves behind), with their
/// timer rows. Returns the number written.
std::size_t create_sleepers(const std::filesystem::path& data_dir,
                            const std::filesystem::path& workflows_dir,
                            std::size_t count, std::int64_t sleep_ms);

/// Resident set size of this process, in bytes.
std::size_t rss_bytes();

} // namespace cerebelum::bench
