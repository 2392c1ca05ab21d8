#pragma once

// JSON renderings shared by the HTTP API and the CLI's `--json` output, so
// that both print the same shapes.
//
// A protobuf message becomes a JSON object with its proto field names.
// Fields whose name ends in `_json` carry JSON text; they are parsed and
// appear nested under the name without the suffix (`result_json` becomes
// `result`, null when empty). An `Event` is flattened: `seq`,
// `recorded_at_ms`, `type` (the payload's name, e.g. "step_completed") and
// the payload's fields. Version hashes (`version`, `workflow_version`) are
// 64-bit and appear as decimal strings, since JavaScript numbers lose digits
// above 2^53; counts, sequence numbers and millisecond times stay numbers.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace google::protobuf {
class Message;
} // namespace google::protobuf

namespace cerebelum::events {
class Event;
} // namespace cerebelum::events

namespace cerebelum::api {

using json = nlohmann::json;

/// Renders `msg` as described at the top of this file.
json message_to_json(const google::protobuf::Message& msg);

/// Renders one history event, flattened.
json event_to_json(const events::Event& ev);

/// Returns the name of the payload of `ev`, e.g. "approval_granted", or
/// "unknown" when none is set.
std::string event_type_name(const events::Event& ev);

/// Parses `text` as JSON; an empty text yields `empty_value`. Returns
/// nothing when `text` is not valid JSON.
std::optional<json> parse_json_text(const std::string& text,
                                    const json& empty_value = json{});

} // namespace cerebelum::api
