#pragma once

// Internal: SQL text built for a group of appends by pg_store. Values are
// quoted through the transaction, never spliced raw.

#include <span>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "eventstore/types.hpp"

namespace cerebelum::eventstore::detail {

/// Writes the events of `reqs` with one COPY into `events`.
void copy_events(pqxx::work& tx, std::span<const append_request* const> reqs);

/// A multi-row INSERT of the events of `req` (the per-append savepoint path).
std::string insert_events_sql(pqxx::transaction_base& tx,
                              const append_request& req);

/// One multi-row upsert of the index rows of `reqs`. When several requests
/// name one execution, the last one wins (they are in sequence order).
std::string upsert_index_sql(pqxx::transaction_base& tx,
                             std::span<const append_request* const> reqs);

/// Timer and task upserts and deletes of `req`, in order, as one
/// multi-statement string (empty when there are none).
std::string row_changes_sql(pqxx::transaction_base& tx,
                            const append_request& req);

/// SELECT of the current next_seq of the executions of `reqs`, locking
/// their index rows.
std::string lock_index_sql(pqxx::transaction_base& tx,
                           std::span<const append_request* const> reqs);

} // namespace cerebelum::eventstore::detail
