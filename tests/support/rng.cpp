#include "tests/support/rng.hpp"

#include <cstdlib>
#include <random>
#include <string>

namespace cerebelum::test {

std::uint64_t test_seed() {
  if (const char* text = std::getenv("CEREBELUM_TEST_SEED");
      text != nullptr && *text != '\0')
    return std::stoull(text, nullptr, 0);
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

} // namespace cerebelum::test
