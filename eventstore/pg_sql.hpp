#pragma once

// Internal: SQL text built for a group of appends by pg_store. Values are
// quoted through the transaction, never spliced raw.

#include <span>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "eventstore/types.hpp"

namespace cerebelum::eventstore::detail {

/// An INSERT of definition `d` unless its (name, version) is stored.
std::string insert_definition_sql(pqxx::transaction_base& tx,
                                  const definition_row& d);

/// Writes the events of `reqs` with one COPY into `events`.
void copy_events(pqxx::work& tx, std::span<const append_request* const> reqs);

/// A multi-row INSERT of the events of `req` (the per-append savepoint path).
std::string insert_events_sql(pqxx::transaction_base& tx,
                              const append_request& req);

/// One multi-row upsert of the index rows of `reqs`. When several requests
/// name one execution, the last one wins (they are in sequence order).
std::string upsert_index_sql(pqxx::transaction_base& tx,
                             std::span<const append_request* const> reqs);

/// The final index row of one execution after a group, and the next_seq the
/// group expects it to have before (0 for a new execution).
struct index_change {
  const append_request* last = nullptr;
  std::int64_t expected_before = 0;
};

/// Index rows as PostgreSQL array literals, one array per column, bound as
/// parameters of `insert_index_from_arrays` / `update_index_from_arrays`:
/// one statement for any number of rows, with no per-row SQL to parse.
struct index_arrays {
  std::string ids, workflows, versions, statuses, phases, next_seqs, wake_ats,
    created_ats, updated_ats, expected;
  std::size_t rows = 0;
};

/// Builds the arrays of `changes`.
index_arrays make_index_arrays(std::span<const index_change> changes);

/// INSERT of new index rows from `index_arrays` parameters $1..$9.
extern const char* const insert_index_from_arrays;

/// UPDATE of existing index rows from `index_arrays` parameters $1..$10,
/// guarded by `next_seq = expected`: the affected row count tells whether
/// every expectation held.
extern const char* const update_index_from_arrays;

/// Timer and task upserts and deletes of `req`, in order, as one
/// multi-statement string (empty when there are none).
std::string row_changes_sql(pqxx::transaction_base& tx,
                            const append_request& req);

/// SELECT of the current next_seq of the executions of `reqs`; with `lock`,
/// FOR UPDATE of their index rows.
std::string select_index_sql(pqxx::transaction_base& tx,
                             std::span<const append_request* const> reqs,
                             bool lock);

} // namespace cerebelum::eventstore::detail
