#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "eventstore/event_store.hpp"
#include "eventstore/result.hpp"
#include "eventstore/types.hpp"
#include "proto/events.pb.h"

namespace cerebelum::eventstore {

/// First type code of the range that replay skips when unknown.
inline constexpr std::int32_t first_skippable_type = 1000;

/// Last type code of the range that replay skips when unknown.
inline constexpr std::int32_t last_skippable_type = 1999;

/// Returns whether an unknown event of type `type` may be skipped on replay.
constexpr bool is_skippable_type(std::int32_t type) noexcept {
  return type >= first_skippable_type && type <= last_skippable_type;
}

/// Encodes `ev` as (type code, payload bytes of the inner message). The type
/// code is the field number of the set `payload` member. Fails with
/// `invalid_argument` when no payload is set.
result<new_event> encode(const events::Event& ev);

/// Decodes a stored event. Returns `std::nullopt` for an unknown type in the
/// skippable range, an `unknown_event_type` error for an unknown core type
/// and `corrupt_event` for an unparsable payload. Both errors mean a damaged
/// event, never a newer writer: adding a core type (1..999) raises
/// `current_schema_version`, and a node refuses a newer schema at open.
result<std::optional<events::Event>> decode(const stored_event& ev);

/// Receives decoded events; returns `false` to stop early.
using event_callback = std::function<bool(const events::Event&)>;

/// Reads the history of `execution_id` from `from_seq`, decoding each event
/// and skipping unknown skippable ones. Stops at the first undecodable event
/// and returns its error. Returns the number of events delivered to `fn`.
result<std::size_t>
read_history(event_store& store, std::string_view execution_id,
             std::int64_t from_seq, const event_callback& fn);

/// `read_history` into memory: every event of `execution_id` from
/// `from_seq`, in order.
result<std::vector<events::Event>> history_of(event_store& store,
                                              std::string_view execution_id,
                                              std::int64_t from_seq = 0);

} // namespace cerebelum::eventstore
