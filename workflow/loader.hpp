#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "workflow/definition.hpp"

namespace cerebelum::workflow {

/// Loads and validates a definition from YAML text (JSON text is accepted
/// too: it is valid YAML). Errors name `file`, the line, the step and the
/// problem. Never throws for malformed input. Every limit of
/// `workflow/limits.hpp` applies: the text must be UTF-8, aliases are
/// counted as they expand, keys must be unique.
[[nodiscard]] result<definition> load_yaml(std::string_view text,
                                           std::string file = "<yaml>");

/// Loads and validates a definition from a JSON document. Errors carry no
/// line numbers.
[[nodiscard]] result<definition> load_json(const json& doc,
                                           std::string file = "<json>");

/// Loads and validates a definition from JSON text (the form remote workers
/// register): refuses duplicate keys and text over the document limits;
/// errors carry line numbers.
[[nodiscard]] result<definition> load_json_text(std::string_view text,
                                                std::string file = "<json>");

/// Loads and validates a definition file (`.yaml`, `.yml` or `.json`).
[[nodiscard]] result<definition> load_file(const std::filesystem::path& path);

} // namespace cerebelum::workflow
