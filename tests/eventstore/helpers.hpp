#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "eventstore/event_store.hpp"

namespace cerebelum::eventstore::testing {

/// An append of `n` events of type `type` whose payloads name their seq.
inline append_request make_append(const std::string& id, std::int64_t expected,
                                  int n, std::int32_t type = 4,
                                  std::size_t pad = 0) {
  append_request req;
  req.execution_id = id;
  req.expected_next_seq = expected;
  for (int i = 0; i < n; ++i) {
    auto payload = id + "#" + std::to_string(expected + i);
    payload.resize(payload.size() + pad, 'x');
    req.events.push_back({type, payload, 1000 + expected + i});
  }
  req.index.workflow = "wf";
  req.index.workflow_version = 7;
  req.index.created_at_ms = 100;
  req.index.updated_at_ms = 100 + expected;
  return req;
}

/// Reads the whole history of `id`; REQUIREs success.
inline std::vector<stored_event>
read_all(event_store& store, const std::string& id, std::int64_t from = 0) {
  std::vector<stored_event> out;
  auto n = store.read(id, from, [&](const stored_event& ev) {
    out.push_back(ev);
    return true;
  });
  INFO((n ? std::string{} : to_string(n.err())));
  REQUIRE(n.ok());
  REQUIRE(*n == out.size());
  return out;
}

/// REQUIREs `res` to be ok, printing its error otherwise.
template <class T>
const T& require_ok(const result<T>& res) {
  INFO((res ? std::string{} : to_string(res.err())));
  REQUIRE(res.ok());
  return *res;
}

} // namespace cerebelum::eventstore::testing

#define CEREBELUM_REQUIRE_OK(expr)                                             \
  ::cerebelum::eventstore::testing::require_ok(expr)
