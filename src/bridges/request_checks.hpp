#pragma once

// Request checks and conversions shared by the gRPC and HTTP front ends, so
// that both reject the same inputs with the same messages.

#include <chrono>
#include <string>

#include <caf/expected.hpp>

#include "actors/engine_api.hpp"

namespace cerebelum::api {

/// The longest a single wait for a result may block.
constexpr std::chrono::milliseconds max_wait{60'000};

/// Parses the JSON text of request field `field`. An empty text yields
/// `empty_value`; text that is not JSON is an `invalid_argument` error
/// naming `field`. With `require_object`, anything but an object is too.
caf::expected<actors::json>
parse_json_field(const std::string& field, const std::string& text,
                 const actors::json& empty_value, bool require_object);

/// Returns an `invalid_argument` error naming `field` when `value` is empty.
caf::error require_non_empty(const std::string& field,
                             const std::string& value);

/// Parses a status filter; empty means no filter. Unknown names are an
/// `invalid_argument` error listing the valid ones.
caf::expected<std::optional<eventstore::execution_status>>
parse_status_filter(const std::string& text);

/// Checks the id a client gives a new execution: one that the read routes
/// can address afterwards (`GET /v1/executions/{id}`), so no `/` and not
/// `.` or `..` (clients drop those path segments). An empty id is fine: the
/// engine chooses one. The text rule of names is the engine's to check.
caf::error check_new_execution_id(const std::string& id);

/// Checks a page size: 0 (the default) to 1000.
caf::error check_page_size(long long page_size);

/// The wait a caller asked for, as served: 0 or more than `max_wait` is
/// `max_wait`.
std::chrono::milliseconds wait_limit(std::chrono::milliseconds asked);

} // namespace cerebelum::api
