#pragma once

// A definition as the store keeps it: its canonical form (definition.hpp) as
// compact JSON text, content-addressed by its version hash. The canonical
// form holds everything the decider reads (not the file name or the line
// numbers of diagnostics), so a definition read back from the store runs an
// execution exactly as the one it was started on.

#include <cstdint>
#include <string>
#include <string_view>

#include "workflow/definition.hpp"

namespace cerebelum::workflow {

/// The stored document of `def`: `canonical_form(def)` as compact JSON.
[[nodiscard]] std::string to_stored_document(const definition& def);

/// Rebuilds the definition of a stored document and checks it: the document
/// must be a canonical form that validates and whose version hash is
/// `version` (otherwise the stored row is damaged, or not the version the
/// caller asked for). `file` names it in diagnostics and in the result's
/// `file`.
[[nodiscard]] result<definition> from_stored_document(std::string_view document,
                                                      std::uint64_t version,
                                                      std::string file);

} // namespace cerebelum::workflow
