#pragma once

// What the crash writer appends and how the crash test checks it.

#include <cstdint>
#include <string>

#include "eventstore/types.hpp"

namespace cerebelum::eventstore::testing {

inline constexpr int crash_threads = 16;
inline constexpr int events_per_append = 3;

inline std::string crash_execution_id(int thread) {
  return "crash-" + std::to_string(thread);
}

/// The payload of event `seq` of `id`: recognizable and ~120 bytes.
inline std::string crash_payload(const std::string& id, std::int64_t seq) {
  auto p = id + "/" + std::to_string(seq) + "/";
  p.resize(120, static_cast<char>('a' + seq % 26));
  return p;
}

/// The append at `next`: 3 events, the index row and the timer "t".
inline append_request crash_append(const std::string& id, std::int64_t next) {
  append_request req;
  req.execution_id = id;
  req.expected_next_seq = next;
  for (int i = 0; i < events_per_append; ++i)
    req.events.push_back({4, crash_payload(id, next + i), next + i});
  auto end = next + events_per_append;
  req.index.workflow = "crash";
  req.index.phase = std::to_string(end);
  req.index.updated_at_ms = end;
  req.timer_upserts.push_back({"", "t", end, "sleep", end});
  return req;
}

} // namespace cerebelum::eventstore::testing
