#pragma once

#include "workflow/definition.hpp"

namespace cerebelum::workflow {

/// Checks an execution's input against the definition's `input_schema`
/// before the execution starts (an absent schema accepts anything).
///
/// Supports the JSON-Schema subset workflows use: `type` (a name or a list
/// of names: object, array, string, number, integer, boolean, null),
/// `required`, `properties`, `additionalProperties: false`, `items`, `enum`,
/// `minimum`, `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`.
/// Unknown keywords are ignored. The diagnostic names the offending path
/// (`input.items[2].sku: expected a string`).
[[nodiscard]] result<ok_t> check_input(const definition& def,
                                       const json& input);

/// The same check against any schema.
[[nodiscard]] result<ok_t> check_against_schema(const json& schema,
                                                const json& value);

} // namespace cerebelum::workflow
