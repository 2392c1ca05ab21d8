// Fuzzes the workflow definition loader: any text, as YAML and as JSON
// text, is loaded and validated (every limit of workflow/limits.hpp). The
// loader must return a definition or a diagnostic; it may not crash, hang,
// throw or grow without bound. A definition it accepts must have a
// canonical form and a version hash that do not depend on the run.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "workflow/loader.hpp"

using namespace cerebelum::workflow;

namespace {

void check_loaded(const result<definition>& def) {
  if (!def) return;
  // A definition that loaded is finalized: its hash is the hash of its
  // canonical form, computed again.
  if (compute_version_hash(*def) != def->version_hash) std::abort();
  (void)canonical_form(*def).dump();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  check_loaded(load_yaml(text, "fuzz.yaml"));
  check_loaded(load_json_text(text, "fuzz.json"));
  return 0;
}
