#pragma once

// Seeded randomness for tests: every random test names its seed, and
// CEREBELUM_TEST_SEED replays a failing run.

#include <cstddef>
#include <cstdint>

namespace cerebelum::test {

/// The seed of a random test: CEREBELUM_TEST_SEED when set (to replay a
/// failure), else a fresh one. Tests print it (Catch2 `INFO`).
std::uint64_t test_seed();

/// A small deterministic generator (xorshift64): the same sequence from the
/// same seed on every platform and standard library, unlike the distributions
/// of <random>.
struct rng {
  /// Never 0 (xorshift would stay at 0).
  std::uint64_t state;

  explicit rng(std::uint64_t seed)
    : state(seed == 0 ? 0x9e3779b97f4a7c15ULL : seed) {
    // nop
  }

  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }

  /// A number in [0, n); 0 when n is 0.
  std::size_t below(std::size_t n) {
    return n == 0 ? 0 : static_cast<std::size_t>(next() % n);
  }

  /// True with probability `percent`/100.
  bool chance(int percent) {
    return below(100) < static_cast<std::size_t>(percent);
  }
};

} // namespace cerebelum::test
