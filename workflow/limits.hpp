#pragma once

// The limits a workflow definition and the values its expressions build
// must keep. A definition comes from a file or from any worker that can
// call Register, so every size the loader or the decider could be made to
// grow is bounded here, and docs/workflow-format.md ("Limits") states each
// value.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cerebelum::workflow::limits {

// -- documents ---------------------------------------------------------------

/// Largest definition document (YAML or JSON text), in bytes.
inline constexpr std::size_t max_document_bytes = 1024 * 1024;

/// Most nodes (scalars, lists, mappings) a document may hold once its YAML
/// aliases are expanded: an alias counts every node of what it refers to,
/// each time it is used. Stops alias bombs ("billion laughs").
inline constexpr std::size_t max_document_nodes = 200'000;

/// Most bytes of scalar text a document may hold once its aliases are
/// expanded (an alias of a long string counts its length per use).
inline constexpr std::size_t max_document_text_bytes = 4 * 1024 * 1024;

/// Deepest nesting of lists and mappings in a document.
inline constexpr int max_document_depth = 64;

/// Most steps in one definition (members of parallel groups included).
inline constexpr std::size_t max_steps = 1'000;

// -- names -------------------------------------------------------------------

/// Longest workflow name, step name, task type, queue name or error kind.
inline constexpr std::size_t max_name_bytes = 128;

/// Longest version label.
inline constexpr std::size_t max_version_bytes = 64;

// -- expressions -------------------------------------------------------------

/// Longest expression (and longest `${...}` hole of a template).
inline constexpr std::size_t max_expression_bytes = 64 * 1024;

/// Deepest nesting of parentheses, brackets, braces and prefix operators.
inline constexpr int max_expression_nesting = 64;

/// Deepest expression tree (`a + b + c` is three levels: chains count).
inline constexpr int max_expression_depth = 256;

// -- values built while an execution runs ------------------------------------

/// Largest value an expression or a template builds, and largest result a
/// `set`, input, approval data, map list, log message or output may have, in
/// bytes of compact JSON text (strings in a template: bytes of UTF-8). Below
/// the store's 1 MiB event payload limit so that the event recording it
/// always fits.
inline constexpr std::size_t max_value_bytes = 1'000'000;

/// Deepest nesting of lists and objects in a value an expression builds.
/// nlohmann's serializer recurses once per level and overflows a thread's
/// stack near 47,000 levels; 128 leaves a wide margin.
inline constexpr int max_value_depth = 128;

/// Longest idempotency key a template renders, in bytes. It travels in the
/// same event as the step's input.
inline constexpr std::size_t max_idempotency_key_bytes = 1024;

// -- decisions ---------------------------------------------------------------

/// Most events one decision may record. Local steps (`set`, `log`, `fail`)
/// and branches are decided without waiting, so a loop of them, or a map
/// over a long list, records everything in one append; the store takes at
/// most 10,000 events per append and refuses more for good.
inline constexpr std::size_t max_decision_events = 8'000;

/// Most bytes of event payloads one decision may record (a loop of `set`
/// steps each yielding a value just under `max_value_bytes`).
inline constexpr std::size_t max_decision_bytes = 64 * 1024 * 1024;

// -- checks ------------------------------------------------------------------

/// Size and depth of a JSON value, measured without serializing it.
struct value_size {
  /// Bytes of its compact JSON text (exact but for floating-point numbers,
  /// counted as 24 bytes).
  std::size_t bytes = 0;
  /// Nesting of lists and objects (a scalar is 0, `[1]` is 1).
  int depth = 0;
};

/// Measures `v`, stopping early once `bytes` passes `max_bytes` or `depth`
/// passes `max_depth` (the walk never goes deeper than that, so a value
/// nested too deeply for a recursive serializer is measured safely).
[[nodiscard]] value_size measure(const nlohmann::json& v,
                                 std::size_t max_bytes = max_value_bytes,
                                 int max_depth = max_value_depth);

/// Why `v` is over the value limits ("value too large: more than 1000000
/// bytes of JSON (limit max_value_bytes)"), or nothing.
[[nodiscard]] std::optional<std::string> check_value(const nlohmann::json& v);

/// Offset of the first byte of `text` that is not well-formed UTF-8
/// (overlong forms, surrogates and code points above U+10FFFF are not), or
/// nothing when all of it is.
[[nodiscard]] std::optional<std::size_t>
invalid_utf8_at(std::string_view text) noexcept;

} // namespace cerebelum::workflow::limits
