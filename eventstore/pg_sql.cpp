#include "eventstore/pg_sql.hpp"

#include <unordered_map>

#include "eventstore/store_util.hpp"

namespace cerebelum::eventstore::detail {

namespace {

std::string bytea_literal(std::string_view bytes) {
  return "'\\x" + to_hex(bytes) + "'::bytea";
}

std::string opt_int(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string{"NULL"};
}

/// Appends `text` as a double-quoted array element.
void add_text(std::string& arr, std::string_view text) {
  arr += arr.empty() ? "{\"" : ",\"";
  for (char c : text) {
    if (c == '"' || c == '\\') arr += '\\';
    arr += c;
  }
  arr += '"';
}

void add_int(std::string& arr, const std::optional<std::int64_t>& v) {
  arr += arr.empty() ? "{" : ",";
  arr += v ? std::to_string(*v) : std::string{"NULL"};
}

} // namespace

const char* const insert_index_from_arrays
  = "INSERT INTO executions SELECT * FROM unnest($1::text[], $2::text[], "
    "$3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], "
    "$8::bigint[], $9::bigint[])";

const char* const update_index_from_arrays
  = "UPDATE executions e SET workflow = v.workflow, "
    "workflow_version = v.workflow_version, status = v.status, "
    "phase = v.phase, next_seq = v.next_seq, wake_at = v.wake_at, "
    "updated_at = v.updated_at "
    "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], "
    "$5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], "
    "$10::bigint[]) AS v(execution_id, workflow, workflow_version, status, "
    "phase, next_seq, wake_at, created_at, updated_at, expected) "
    "WHERE e.execution_id = v.execution_id AND e.next_seq = v.expected";

index_arrays make_index_arrays(std::span<const index_change> changes) {
  index_arrays a;
  for (const auto& ch : changes) {
    const auto& req = *ch.last;
    const auto& ix = req.index;
    add_text(a.ids, req.execution_id);
    add_text(a.workflows, ix.workflow);
    add_int(a.versions, static_cast<std::int64_t>(ix.workflow_version));
    add_text(a.statuses, to_string(ix.status));
    add_text(a.phases, ix.phase);
    add_int(a.next_seqs, req.expected_next_seq
                           + static_cast<std::int64_t>(req.events.size()));
    add_int(a.wake_ats, ix.wake_at_ms);
    add_int(a.created_ats, ix.created_at_ms);
    add_int(a.updated_ats, ix.updated_at_ms);
    add_int(a.expected, ch.expected_before);
    ++a.rows;
  }
  for (auto* arr :
       {&a.ids, &a.workflows, &a.versions, &a.statuses, &a.phases, &a.next_seqs,
        &a.wake_ats, &a.created_ats, &a.updated_ats, &a.expected})
    *arr += arr->empty() ? "{}" : "}";
  return a;
}

void copy_events(pqxx::work& tx, std::span<const append_request* const> reqs) {
  pqxx::stream_to copy{tx, "events"};
  std::string hex;
  for (const auto* req : reqs) {
    auto seq = req->expected_next_seq;
    for (const auto& ev : req->events) {
      hex = "\\x" + to_hex(ev.payload);
      copy << std::make_tuple(req->execution_id, seq++, ev.type, hex,
                              ev.recorded_at_ms);
    }
  }
  copy.complete();
}

std::string insert_events_sql(pqxx::transaction_base& tx,
                              const append_request& req) {
  if (req.events.empty()) return {};
  std::string sql = "INSERT INTO events VALUES ";
  auto seq = req.expected_next_seq;
  auto id = tx.quote(req.execution_id);
  for (std::size_t i = 0; i < req.events.size(); ++i) {
    const auto& ev = req.events[i];
    if (i > 0) sql += ',';
    sql += '(' + id + ',' + std::to_string(seq++) + ','
           + std::to_string(ev.type) + ',' + bytea_literal(ev.payload) + ','
           + std::to_string(ev.recorded_at_ms) + ')';
  }
  return sql;
}

std::string upsert_index_sql(pqxx::transaction_base& tx,
                             std::span<const append_request* const> reqs) {
  std::unordered_map<std::string_view, const append_request*> last;
  std::vector<const append_request*> order;
  for (const auto* req : reqs) {
    auto [it, added] = last.try_emplace(req->execution_id, req);
    if (added)
      order.push_back(req);
    else
      it->second = req;
  }
  std::string sql = "INSERT INTO executions VALUES ";
  bool first = true;
  for (const auto* head : order) {
    const auto* req = last[head->execution_id];
    const auto& ix = req->index;
    auto next = req->expected_next_seq
                + static_cast<std::int64_t>(req->events.size());
    if (!first) sql += ',';
    first = false;
    sql += '(' + tx.quote(req->execution_id) + ',' + tx.quote(ix.workflow) + ','
           + std::to_string(static_cast<std::int64_t>(ix.workflow_version))
           + ",'" + to_string(ix.status) + "'," + tx.quote(ix.phase) + ','
           + std::to_string(next) + ',' + opt_int(ix.wake_at_ms) + ','
           + std::to_string(ix.created_at_ms) + ','
           + std::to_string(ix.updated_at_ms) + ')';
  }
  sql += " ON CONFLICT (execution_id) DO UPDATE SET "
         "workflow = EXCLUDED.workflow, "
         "workflow_version = EXCLUDED.workflow_version, "
         "status = EXCLUDED.status, phase = EXCLUDED.phase, "
         "next_seq = EXCLUDED.next_seq, wake_at = EXCLUDED.wake_at, "
         "updated_at = EXCLUDED.updated_at";
  return sql;
}

std::string insert_definition_sql(pqxx::transaction_base& tx,
                                  const definition_row& d) {
  return "INSERT INTO definitions VALUES (" + tx.quote(d.name) + ','
         + std::to_string(static_cast<std::int64_t>(d.version)) + ','
         + tx.quote(d.document) + ',' + tx.quote(d.source) + ','
         + std::to_string(d.stored_at_ms)
         + ") ON CONFLICT (name, version) DO NOTHING;";
}

std::string row_changes_sql(pqxx::transaction_base& tx,
                            const append_request& req) {
  std::string sql;
  auto id = tx.quote(req.execution_id);
  for (const auto& t : req.timer_upserts)
    sql += "INSERT INTO timers VALUES (" + id + ',' + tx.quote(t.timer_id) + ','
           + std::to_string(t.fire_at_ms) + ',' + tx.quote(t.purpose) + ','
           + std::to_string(t.generation)
           + ") ON CONFLICT (execution_id, timer_id) DO UPDATE SET "
             "fire_at = EXCLUDED.fire_at, purpose = EXCLUDED.purpose, "
             "generation = EXCLUDED.generation;";
  for (const auto& t : req.timer_deletes)
    sql += "DELETE FROM timers WHERE execution_id = " + id
           + " AND timer_id = " + tx.quote(t) + ';';
  for (const auto& t : req.task_upserts)
    sql += "INSERT INTO tasks VALUES (" + tx.quote(t.task_id) + ',' + id + ','
           + tx.quote(t.queue) + ',' + tx.quote(t.step) + ','
           + std::to_string(t.attempt) + ',' + tx.quote(t.attempt_token) + ','
           + tx.quote(t.idempotency_key) + ',' + bytea_literal(t.payload) + ','
           + std::to_string(t.available_at_ms) + ',' + tx.quote(t.lease_owner)
           + ',' + opt_int(t.lease_expires_at_ms)
           + ") ON CONFLICT (task_id) DO UPDATE SET "
             "queue = EXCLUDED.queue, step = EXCLUDED.step, "
             "attempt = EXCLUDED.attempt, "
             "attempt_token = EXCLUDED.attempt_token, "
             "idempotency_key = EXCLUDED.idempotency_key, "
             "payload = EXCLUDED.payload, "
             "available_at = EXCLUDED.available_at, "
             "lease_owner = EXCLUDED.lease_owner, "
             "lease_expires_at = EXCLUDED.lease_expires_at "
             "WHERE tasks.execution_id = EXCLUDED.execution_id;";
  for (const auto& t : req.task_deletes)
    sql += "DELETE FROM tasks WHERE task_id = " + tx.quote(t)
           + " AND execution_id = " + id + ';';
  for (const auto& d : req.dead_letter_inserts)
    sql += "INSERT INTO dead_letters (task_id, execution_id, queue, attempt, "
           "payload, error, failed_at) VALUES ("
           + tx.quote(d.task_id) + ',' + id + ',' + tx.quote(d.queue) + ','
           + std::to_string(d.attempt) + ',' + bytea_literal(d.payload) + ','
           + tx.quote(d.error) + ',' + std::to_string(d.failed_at_ms) + ");";
  for (auto d : req.dead_letter_deletes)
    sql += "DELETE FROM dead_letters WHERE id = " + std::to_string(d)
           + " AND execution_id = " + id + ';';
  for (const auto& d : req.definition_inserts)
    sql += insert_definition_sql(tx, d);
  return sql;
}

std::string select_index_sql(pqxx::transaction_base& tx,
                             std::span<const append_request* const> reqs,
                             bool lock) {
  std::string sql = "SELECT execution_id, next_seq FROM executions "
                    "WHERE execution_id IN (";
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (i > 0) sql += ',';
    sql += tx.quote(reqs[i]->execution_id);
  }
  sql += ')';
  // A stable lock order keeps two writers of one database deadlock-free.
  if (lock) sql += " ORDER BY execution_id FOR UPDATE";
  return sql;
}

} // namespace cerebelum::eventstore::detail
