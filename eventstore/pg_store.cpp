#include "eventstore/pg_store.hpp"

#include <mutex>
#include <unordered_map>
#include <vector>

#include <pqxx/pqxx>

#include "eventstore/pg_schema.hpp"
#include "eventstore/pg_sql.hpp"
#include "eventstore/store_util.hpp"

namespace cerebelum::eventstore {

namespace {

constexpr const char* execution_columns
  = "execution_id, workflow, workflow_version, status, phase, next_seq, "
    "wake_at, created_at, updated_at";

using conn_ptr = std::unique_ptr<pqxx::connection>;

using seq_map = std::unordered_map<std::string, std::int64_t>;

/// The fast path found an execution not at the seq its first append of the
/// group expected: the group is redone on the isolated path.
struct prediction_failed : std::exception {
  const char* what() const noexcept override {
    return "an execution was not at its expected seq";
  }
};

/// Maps a libpqxx exception caught at the store boundary to an `error`.
error to_error(const std::exception& e, bool possibly_committed = false) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr)
    return make_error(
      errc::unavailable,
      std::string{"postgres: commit outcome unknown: "} + e.what(), true, true);
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr)
    return make_error(errc::unavailable,
                      std::string{"postgres: connection lost: "} + e.what(),
                      true, possibly_committed);
  // A server going away answers before the connection breaks: class 57
  // (operator intervention: 57P01 admin_shutdown, 57P02 crash_shutdown,
  // 57P03 cannot_connect_now, while it starts) and class 08 (connection
  // exception). The same call succeeds once the server is back.
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const auto& state = sql->sqlstate();
    if (state.rfind("57", 0) == 0 || state.rfind("08", 0) == 0)
      return make_error(errc::unavailable,
                        std::string{"postgres: server unavailable ("} + state
                          + "): " + e.what(),
                        true, possibly_committed);
  }
  bool retryable
    = dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr
      || dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr;
  return make_error(errc::storage_error, std::string{"postgres: "} + e.what(),
                    retryable, possibly_committed);
}

bool is_data_error(const std::exception& e) {
  return dynamic_cast<const pqxx::integrity_constraint_violation*>(&e)
           != nullptr
         || dynamic_cast<const pqxx::data_exception*>(&e) != nullptr;
}

execution_row read_execution(const pqxx::row& r) {
  execution_row row;
  row.execution_id = r[0].as<std::string>();
  row.workflow = r[1].as<std::string>();
  row.workflow_version = static_cast<std::uint64_t>(r[2].as<std::int64_t>());
  row.status
    = parse_status(r[3].as<std::string>()).value_or(execution_status::failed);
  row.phase = r[4].as<std::string>();
  row.next_seq = r[5].as<std::int64_t>();
  if (!r[6].is_null()) row.wake_at_ms = r[6].as<std::int64_t>();
  row.created_at_ms = r[7].as<std::int64_t>();
  row.updated_at_ms = r[8].as<std::int64_t>();
  return row;
}

std::string bytes_of(const pqxx::field& f) {
  pqxx::binarystring bs{f};
  return bs.str();
}

class pg_store final : public event_store {
 public:
  explicit pg_store(pg_options opts) : opts_(std::move(opts)) {
    // nop
  }

  status open();

  std::vector<append_result>
  append_batch(std::span<const append_request> reqs) override;

  result<std::size_t> read(std::string_view execution_id, std::int64_t from_seq,
                           const read_callback& fn) override;

  result<std::optional<execution_row>>
  get_execution(std::string_view execution_id) override;

  result<execution_page> list_executions(const list_filter& filter,
                                         std::size_t page_size,
                                         std::string_view page_token) override {
    return list(filter, false, page_size, page_token);
  }

  result<execution_page> open_executions(std::size_t page_size,
                                         std::string_view page_token) override {
    return list(list_filter{}, true, page_size, page_token);
  }

  result<std::vector<timer_row>> due_timers(std::int64_t until_ms,
                                            std::size_t limit) override;

  result<std::vector<timer_row>>
  timers_of(std::string_view execution_id) override;

  result<std::vector<task_row>>
  tasks_of(std::string_view execution_id) override;

  result<task_page> all_tasks(std::size_t page_size,
                              std::string_view page_token) override;

  result<dead_letter_page>
  list_dead_letters(std::string_view queue, std::size_t page_size,
                    std::string_view page_token) override;

  result<std::optional<dead_letter_row>>
  get_dead_letter(std::int64_t id) override;

  status put_definitions(std::span<const definition_row> rows) override;

  result<std::optional<definition_row>>
  get_definition(std::string_view name, std::uint64_t version) override;

  result<std::vector<definition_row>> list_definitions(std::string_view name,
                                                       bool documents) override;

  status put_token(const token_row& row) override;

  result<std::optional<token_row>> get_token(std::string_view id) override;

  result<std::vector<token_row>> list_tokens() override;

  result<std::string> claim_workflow(std::string_view name,
                                     std::string_view owner,
                                     std::int64_t at_ms) override;
  result<std::optional<workflow_owner_row>>
  get_workflow_owner(std::string_view name) override;
  result<workflow_owner_row>
  replace_workflow_owner(std::string_view name, std::string_view owner,
                         std::string_view by, std::int64_t at_ms) override;

  result<bool> revoke_token(std::string_view id, std::int64_t at_ms) override;

  status touch_token(std::string_view id, std::int64_t at_ms) override;

  int schema_version() const noexcept override {
    return current_schema_version;
  }

 private:
  conn_ptr connect() {
    auto conn = std::make_unique<pqxx::connection>(opts_.conninfo);
    pqxx::nontransaction tx{*conn};
    tx.exec0("SET synchronous_commit = on");
    tx.exec0("SET search_path TO " + tx.quote_name(opts_.schema));
    return conn;
  }

  status create_or_check_schema(pqxx::connection& conn);

  /// Validates and conflict-checks `reqs` inside `tx`; fills `out` for the
  /// rejected ones, `before` with each execution's next_seq before the group
  /// and returns the accepted ones in order.
  std::vector<std::size_t> admit(pqxx::work& tx,
                                 std::span<const append_request> reqs,
                                 std::vector<std::optional<append_result>>& out,
                                 seq_map& before, bool isolated);

  /// Writes the accepted appends: one COPY, one INSERT of new and one
  /// guarded UPDATE of existing index rows. Throws `prediction_failed` when
  /// an execution was not at the expected seq.
  void write_fast(pqxx::work& tx, std::span<const append_request> reqs,
                  const std::vector<std::size_t>& accepted,
                  const seq_map& before);

  /// Writes each accepted append in its own savepoint, failing only those
  /// that hit a constraint.
  void write_isolated(pqxx::work& tx, std::span<const append_request> reqs,
                      std::vector<std::size_t>& accepted,
                      std::vector<std::optional<append_result>>& out);

  std::vector<append_result> try_batch(std::span<const append_request> reqs,
                                       bool isolated, bool& retry_isolated);

  /// Runs `fn(conn)` on a pooled reader connection.
  template <class F>
  auto with_reader(F&& fn) -> decltype(fn(std::declval<pqxx::connection&>()));

  /// Runs `fn(conn)` on the writer connection under the writer's mutex (one
  /// small write between two groups of appends). A connection lost on the
  /// way may have committed the write.
  template <class F>
  auto with_writer(F&& fn) -> decltype(fn(std::declval<pqxx::connection&>()));

  result<execution_page> list(const list_filter& filter, bool open_only,
                              std::size_t page_size,
                              std::string_view page_token);

  pg_options opts_;
  std::mutex write_mtx_;
  conn_ptr writer_;
  std::mutex pool_mtx_;
  std::vector<conn_ptr> readers_;
};

status pg_store::open() {
  try {
    {
      pqxx::connection conn{opts_.conninfo};
      if (auto st = create_or_check_schema(conn); !st) return st;
    }
    writer_ = connect();
    return ok_status();
  } catch (const std::exception& e) {
    return to_error(e);
  }
}

status pg_store::create_or_check_schema(pqxx::connection& conn) {
  pqxx::work tx{conn};
  // Serializes concurrent creators of the same schema.
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))",
                 "cerebelum.eventstore." + opts_.schema);
  auto where = "schema \"" + opts_.schema + "\"";
  auto tables = tx.exec_params1(
    "SELECT count(*), count(*) FILTER (WHERE c.relname = 'schema_version') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
    opts_.schema);
  auto n_tables = tables[0].as<std::int64_t>();
  if (tables[1].as<std::int64_t>() == 0) {
    if (n_tables > 0 || !opts_.create_if_missing)
      return make_error(errc::schema_incompatible,
                        where
                          + " holds no Cerebelum event store (no "
                            "schema_version table): configure an empty or "
                            "new schema name");
    auto schema = tx.quote_name(opts_.schema);
    tx.exec0("CREATE SCHEMA IF NOT EXISTS " + schema);
    tx.exec0("SET LOCAL search_path TO " + schema);
    tx.exec0(detail::pg_schema_v1);
    tx.exec0(detail::pg_schema_v2);
    tx.exec0(detail::pg_schema_v4);
    tx.exec0(detail::pg_schema_v5);
    tx.exec0(detail::pg_schema_v6);
    for (int i = 0; i < opts_.event_partitions; ++i)
      tx.exec0("CREATE TABLE events_p" + std::to_string(i)
               + " PARTITION OF events FOR VALUES WITH (MODULUS "
               + std::to_string(opts_.event_partitions) + ", REMAINDER "
               + std::to_string(i) + ")");
    tx.exec_params0("INSERT INTO schema_version VALUES ('eventstore', $1, $2)",
                    current_schema_version, "cerebelum");
    tx.commit();
    return ok_status();
  }
  auto ver = tx.exec("SELECT version FROM " + tx.quote_name(opts_.schema)
                     + ".schema_version WHERE component = 'eventstore'");
  int stored = ver.empty() ? 0 : ver[0][0].as<int>();
  if (stored >= 1 && stored < current_schema_version) {
    // Version 1 -> 2: the definitions table; 2 -> 3: a new core event type,
    // nothing to change; 3 -> 4: the tokens table; 4 -> 5: its
    // cert_subject column and the workflow_owners table; 5 -> 6: the
    // replacement columns of workflow_owners. In the same transaction as
    // the version they bring (the advisory lock keeps concurrent openers
    // out).
    tx.exec0("SET LOCAL search_path TO " + tx.quote_name(opts_.schema));
    if (stored == 1) tx.exec0(detail::pg_schema_v2);
    if (stored <= 3) tx.exec0(detail::pg_schema_v4);
    if (stored <= 4) tx.exec0(detail::pg_schema_v5);
    if (stored <= 5) tx.exec0(detail::pg_schema_v6);
    tx.exec_params0("UPDATE schema_version SET version = $1, written_by = $2 "
                    "WHERE component = 'eventstore'",
                    current_schema_version, "cerebelum");
    stored = current_schema_version;
  }
  tx.commit();
  return check_schema_version(stored, where);
}

std::vector<std::size_t>
pg_store::admit(pqxx::work& tx, std::span<const append_request> reqs,
                std::vector<std::optional<append_result>>& out, seq_map& before,
                bool isolated) {
  std::vector<std::size_t> valid;
  std::vector<const append_request*> ptrs;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (auto st = validate(reqs[i], opts_.limits); !st) {
      out[i] = append_result{std::move(st).err()};
      continue;
    }
    valid.push_back(i);
    ptrs.push_back(&reqs[i]);
  }
  // The isolated path reads and locks the index rows. The fast path trusts
  // the first append of each execution and lets the guarded index UPDATE
  // (and the events' primary key) confirm it inside the transaction.
  if (isolated && !ptrs.empty())
    for (const auto& row : tx.exec(detail::select_index_sql(tx, ptrs, true)))
      before.emplace(row[0].as<std::string>(), row[1].as<std::int64_t>());
  seq_map next;
  std::vector<std::size_t> accepted;
  for (auto i : valid) {
    const auto& req = reqs[i];
    if (!isolated) before.try_emplace(req.execution_id, req.expected_next_seq);
    auto [it, added] = next.try_emplace(req.execution_id,
                                        before[req.execution_id]);
    if (it->second != req.expected_next_seq) {
      out[i] = append_result{
        make_error(errc::conflict,
                   "execution '" + req.execution_id + "' expected seq "
                     + std::to_string(req.expected_next_seq)
                     + " but its next seq is " + std::to_string(it->second))};
      continue;
    }
    it->second += static_cast<std::int64_t>(req.events.size());
    accepted.push_back(i);
  }
  return accepted;
}

void pg_store::write_fast(pqxx::work& tx, std::span<const append_request> reqs,
                          const std::vector<std::size_t>& accepted,
                          const seq_map& before) {
  if (accepted.empty()) return;
  std::vector<const append_request*> ptrs;
  std::string changes;
  std::unordered_map<std::string_view, std::size_t> slot;
  std::vector<detail::index_change> created;
  std::vector<detail::index_change> updated;
  for (auto i : accepted) {
    const auto* req = &reqs[i];
    ptrs.push_back(req);
    changes += detail::row_changes_sql(tx, *req);
    auto base = before.at(req->execution_id);
    auto& list = base == 0 ? created : updated;
    auto [it, added] = slot.try_emplace(req->execution_id, list.size());
    if (added)
      list.push_back({req, base});
    else
      list[it->second].last = req; // same list: same base
  }
  detail::copy_events(tx, ptrs);
  if (!created.empty()) {
    auto a = detail::make_index_arrays(created);
    tx.exec_params0(detail::insert_index_from_arrays, a.ids, a.workflows,
                    a.versions, a.statuses, a.phases, a.next_seqs, a.wake_ats,
                    a.created_ats, a.updated_ats);
  }
  if (!updated.empty()) {
    auto a = detail::make_index_arrays(updated);
    auto res = tx.exec_params(detail::update_index_from_arrays, a.ids,
                              a.workflows, a.versions, a.statuses, a.phases,
                              a.next_seqs, a.wake_ats, a.created_ats,
                              a.updated_ats, a.expected);
    if (res.affected_rows() != a.rows) throw prediction_failed{};
  }
  if (!changes.empty()) tx.exec(changes);
}

void pg_store::write_isolated(pqxx::work& tx,
                              std::span<const append_request> reqs,
                              std::vector<std::size_t>& accepted,
                              std::vector<std::optional<append_result>>& out) {
  std::vector<std::size_t> kept;
  for (auto i : accepted) {
    const auto* req = &reqs[i];
    try {
      pqxx::subtransaction sub{tx, "one_append"};
      auto sql = detail::insert_events_sql(sub, *req);
      if (!sql.empty()) sub.exec0(sql);
      sub.exec0(detail::upsert_index_sql(sub, {&req, 1}));
      if (auto changes = detail::row_changes_sql(sub, *req); !changes.empty())
        sub.exec(changes);
      sub.commit();
      kept.push_back(i);
    } catch (const pqxx::sql_error& e) {
      if (!is_data_error(e)) throw;
      out[i] = append_result{make_error(
        errc::invalid_argument, "append to execution '" + req->execution_id
                                  + "' rejected: " + e.what())};
    }
  }
  accepted = std::move(kept);
}

std::vector<append_result>
pg_store::try_batch(std::span<const append_request> reqs, bool isolated,
                    bool& retry_isolated) {
  std::vector<std::optional<append_result>> out(reqs.size());
  std::vector<std::size_t> accepted;
  try {
    if (!writer_ || !writer_->is_open()) writer_ = connect();
    pqxx::work tx{*writer_};
    seq_map before;
    accepted = admit(tx, reqs, out, before, isolated);
    if (isolated)
      write_isolated(tx, reqs, accepted, out);
    else
      write_fast(tx, reqs, accepted, before);
    try {
      tx.commit();
    } catch (const pqxx::in_doubt_error& e) {
      writer_.reset();
      throw;
    } catch (const pqxx::broken_connection& e) {
      writer_.reset();
      // Lost while waiting for the reply to COMMIT: outcome unknown.
      return std::vector<append_result>(reqs.size(), to_error(e, true));
    }
  } catch (const pqxx::broken_connection& e) {
    writer_.reset();
    return std::vector<append_result>(reqs.size(), to_error(e));
  } catch (const pqxx::in_doubt_error& e) {
    return std::vector<append_result>(reqs.size(), to_error(e));
  } catch (const prediction_failed&) {
    retry_isolated = true;
    return {};
  } catch (const std::exception& e) {
    if (!isolated && is_data_error(e)) {
      retry_isolated = true; // a concurrent writer: find the culprit
      return {};
    }
    auto err = to_error(e);
    // The server went away mid-transaction: connect afresh next time.
    if (err.code == errc::unavailable) writer_.reset();
    return std::vector<append_result>(reqs.size(), std::move(err));
  }
  std::vector<append_result> results;
  results.reserve(reqs.size());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (out[i]) {
      results.push_back(std::move(*out[i]));
      continue;
    }
    auto first = reqs[i].expected_next_seq;
    results.push_back(append_ack{
      first, first + static_cast<std::int64_t>(reqs[i].events.size())});
  }
  return results;
}

std::vector<append_result>
pg_store::append_batch(std::span<const append_request> reqs) {
  std::lock_guard guard{write_mtx_};
  bool reused = writer_ != nullptr;
  bool retry_isolated = false;
  auto results = try_batch(reqs, false, retry_isolated);
  if (retry_isolated) results = try_batch(reqs, true, retry_isolated);
  // A connection kept from before the server went away fails its first use
  // (it was dropped: writer_ is null): not an outage if a fresh one works.
  // Only when nothing can have committed.
  auto stale = [&] {
    if (!reused || writer_ || results.empty()) return false;
    for (auto& r : results)
      if (r.ok() || r.err().code != errc::unavailable
          || r.err().possibly_committed)
        return false;
    return true;
  };
  if (stale()) {
    retry_isolated = false;
    results = try_batch(reqs, false, retry_isolated);
    if (retry_isolated) results = try_batch(reqs, true, retry_isolated);
  }
  return results;
}

template <class F>
auto pg_store::with_reader(F&& fn)
  -> decltype(fn(std::declval<pqxx::connection&>())) {
  conn_ptr conn;
  bool pooled = false;
  {
    std::lock_guard guard{pool_mtx_};
    if (!readers_.empty()) {
      conn = std::move(readers_.back());
      readers_.pop_back();
      pooled = true;
    }
  }
  for (;;) {
    try {
      if (!conn || !conn->is_open()) conn = connect();
      auto res = fn(*conn);
      std::lock_guard guard{pool_mtx_};
      if (readers_.size() < 8) readers_.push_back(std::move(conn));
      return res;
    } catch (const std::exception& e) {
      auto err = to_error(e);
      if (err.code != errc::unavailable) return err;
      // The server went away (and maybe came back): every pooled
      // connection is as stale as this one. A stale pooled connection is
      // not an outage: read once more on a fresh one.
      {
        std::lock_guard guard{pool_mtx_};
        readers_.clear();
      }
      conn.reset();
      if (!pooled) return err;
      pooled = false;
    }
  }
}

result<std::size_t> pg_store::read(std::string_view execution_id,
                                   std::int64_t from_seq,
                                   const read_callback& fn) {
  if (from_seq < 0)
    return make_error(errc::invalid_argument, "read with a negative from_seq "
                                                + std::to_string(from_seq));
  // Keyset pages bound the memory of a read whatever the history's length.
  constexpr int page = 1000;
  std::string id{execution_id};
  return with_reader([&](pqxx::connection& conn) -> result<std::size_t> {
    std::size_t n = 0;
    auto seq = from_seq;
    for (;;) {
      // One round trip per page; pages are append-only ranges, so they need
      // no common snapshot.
      pqxx::nontransaction tx{conn};
      auto rows = tx.exec_params("SELECT seq, type, payload, recorded_at "
                                 "FROM events WHERE execution_id = $1 "
                                 "AND seq >= $2 ORDER BY seq LIMIT $3",
                                 id, seq, page);
      stored_event ev;
      for (const auto& r : rows) {
        ev.seq = r[0].as<std::int64_t>();
        ev.type = r[1].as<std::int32_t>();
        ev.payload = bytes_of(r[2]);
        ev.recorded_at_ms = r[3].as<std::int64_t>();
        ++n;
        if (!fn(ev)) return n;
        seq = ev.seq + 1;
      }
      if (rows.size() < static_cast<std::size_t>(page)) return n;
    }
  });
}

result<std::optional<execution_row>>
pg_store::get_execution(std::string_view execution_id) {
  using res_t = result<std::optional<execution_row>>;
  std::string id{execution_id};
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::nontransaction tx{conn};
    auto rows = tx.exec_params(std::string{"SELECT "} + execution_columns
                                 + " FROM executions WHERE execution_id = $1",
                               id);
    if (rows.empty()) return std::optional<execution_row>{};
    return std::optional<execution_row>{read_execution(rows[0])};
  });
}

result<execution_page> pg_store::list(const list_filter& filter, bool open_only,
                                      std::size_t page_size,
                                      std::string_view page_token) {
  auto pos = detail::decode_page_token(page_token);
  if (!pos) return std::move(pos).err();
  auto limit = detail::clamp_page_size(page_size);
  return with_reader([&](pqxx::connection& conn) -> result<execution_page> {
    pqxx::read_transaction tx{conn};
    std::string sql = std::string{"SELECT "} + execution_columns
                      + " FROM executions WHERE true";
    if (filter.status)
      sql += std::string{" AND status = '"} + to_string(*filter.status) + "'";
    if (open_only)
      sql += " AND status NOT IN ('completed', 'failed', 'cancelled')";
    if (filter.workflow) sql += " AND workflow = " + tx.quote(*filter.workflow);
    if (filter.created_from_ms)
      sql += " AND created_at >= " + std::to_string(*filter.created_from_ms);
    if (filter.created_to_ms)
      sql += " AND created_at < " + std::to_string(*filter.created_to_ms);
    if (*pos)
      sql += " AND (created_at, execution_id) > ("
             + std::to_string((*pos)->created_at_ms) + ", "
             + tx.quote((*pos)->execution_id) + ")";
    sql += " ORDER BY created_at, execution_id LIMIT " + std::to_string(limit);
    execution_page page;
    for (const auto& r : tx.exec(sql))
      page.rows.push_back(read_execution(r));
    if (page.rows.size() == limit)
      page.next_page_token = detail::encode_page_token(
        {page.rows.back().created_at_ms, page.rows.back().execution_id});
    return page;
  });
}

std::vector<timer_row> read_timers(const pqxx::result& rows) {
  std::vector<timer_row> out;
  for (const auto& r : rows)
    out.push_back({r[0].as<std::string>(), r[1].as<std::string>(),
                   r[2].as<std::int64_t>(), r[3].as<std::string>(),
                   r[4].as<std::int64_t>()});
  return out;
}

result<std::vector<timer_row>> pg_store::due_timers(std::int64_t until_ms,
                                                    std::size_t limit) {
  using res_t = result<std::vector<timer_row>>;
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::read_transaction tx{conn};
    return read_timers(tx.exec_params(
      "SELECT execution_id, timer_id, fire_at, purpose, generation "
      "FROM timers WHERE fire_at <= $1 "
      "ORDER BY fire_at, execution_id, timer_id LIMIT $2",
      until_ms, static_cast<std::int64_t>(limit)));
  });
}

result<std::vector<timer_row>>
pg_store::timers_of(std::string_view execution_id) {
  using res_t = result<std::vector<timer_row>>;
  std::string id{execution_id};
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::read_transaction tx{conn};
    return read_timers(tx.exec_params(
      "SELECT execution_id, timer_id, fire_at, purpose, generation "
      "FROM timers WHERE execution_id = $1 ORDER BY timer_id",
      id));
  });
}

constexpr const char* pg_task_columns
  = "task_id, execution_id, queue, step, attempt, attempt_token, "
    "idempotency_key, payload, available_at, lease_owner, lease_expires_at";

std::vector<task_row> read_tasks(const pqxx::result& res) {
  std::vector<task_row> out;
  for (const auto& r : res) {
    task_row t{r[0].as<std::string>(),
               r[1].as<std::string>(),
               r[2].as<std::string>(),
               r[3].as<std::string>(),
               r[4].as<std::int32_t>(),
               r[5].as<std::string>(),
               r[6].as<std::string>(),
               bytes_of(r[7]),
               r[8].as<std::int64_t>(),
               r[9].as<std::string>(),
               std::nullopt};
    if (!r[10].is_null()) t.lease_expires_at_ms = r[10].as<std::int64_t>();
    out.push_back(std::move(t));
  }
  return out;
}

constexpr const char* pg_dead_letter_columns
  = "id, task_id, execution_id, queue, attempt, payload, error, failed_at";

std::vector<dead_letter_row> read_dead_letters(const pqxx::result& res) {
  std::vector<dead_letter_row> out;
  for (const auto& r : res)
    out.push_back({r[0].as<std::int64_t>(), r[1].as<std::string>(),
                   r[2].as<std::string>(), r[3].as<std::string>(),
                   r[4].as<std::int32_t>(), bytes_of(r[5]),
                   r[6].as<std::string>(), r[7].as<std::int64_t>()});
  return out;
}

result<std::vector<task_row>>
pg_store::tasks_of(std::string_view execution_id) {
  using res_t = result<std::vector<task_row>>;
  std::string id{execution_id};
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::read_transaction tx{conn};
    return read_tasks(tx.exec_params(std::string{"SELECT "} + pg_task_columns
                                       + " FROM tasks WHERE execution_id = $1 "
                                         "ORDER BY task_id",
                                     id));
  });
}

result<task_page> pg_store::all_tasks(std::size_t page_size,
                                      std::string_view page_token) {
  auto limit = detail::clamp_page_size(page_size);
  std::string after{page_token};
  return with_reader([&](pqxx::connection& conn) -> result<task_page> {
    pqxx::read_transaction tx{conn};
    task_page page;
    page.rows = read_tasks(tx.exec_params(
      std::string{"SELECT "} + pg_task_columns
        + " FROM tasks WHERE task_id > $1 ORDER BY task_id LIMIT $2",
      after, static_cast<std::int64_t>(limit)));
    if (page.rows.size() == limit)
      page.next_page_token = page.rows.back().task_id;
    return page;
  });
}

result<dead_letter_page>
pg_store::list_dead_letters(std::string_view queue, std::size_t page_size,
                            std::string_view page_token) {
  auto after = detail::decode_id_token(page_token);
  if (!after) return std::move(after).err();
  auto limit = detail::clamp_page_size(page_size);
  std::string q{queue};
  return with_reader([&](pqxx::connection& conn) -> result<dead_letter_page> {
    pqxx::read_transaction tx{conn};
    dead_letter_page page;
    page.rows = read_dead_letters(tx.exec_params(
      std::string{"SELECT "} + pg_dead_letter_columns
        + " FROM dead_letters WHERE id > $1 AND ($2 = '' OR queue = $2) "
          "ORDER BY id LIMIT $3",
      *after, q, static_cast<std::int64_t>(limit)));
    if (page.rows.size() == limit)
      page.next_page_token = std::to_string(page.rows.back().id);
    return page;
  });
}

result<std::optional<dead_letter_row>>
pg_store::get_dead_letter(std::int64_t id) {
  using res_t = result<std::optional<dead_letter_row>>;
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::read_transaction tx{conn};
    auto rows = read_dead_letters(
      tx.exec_params(std::string{"SELECT "} + pg_dead_letter_columns
                       + " FROM dead_letters WHERE id = $1",
                     id));
    if (rows.empty()) return std::optional<dead_letter_row>{};
    return std::optional<dead_letter_row>{std::move(rows.front())};
  });
}

status pg_store::put_definitions(std::span<const definition_row> rows) {
  std::lock_guard guard{write_mtx_};
  try {
    if (!writer_ || !writer_->is_open()) writer_ = connect();
    pqxx::work tx{*writer_};
    std::string sql;
    for (const auto& d : rows)
      sql += detail::insert_definition_sql(tx, d);
    if (!sql.empty()) tx.exec(sql);
    tx.commit();
    return ok_status();
  } catch (const pqxx::broken_connection& e) {
    writer_.reset();
    return to_error(e, true);
  } catch (const std::exception& e) {
    auto err = to_error(e);
    // The server went away mid-transaction: connect afresh next time.
    if (err.code == errc::unavailable) writer_.reset();
    return err;
  }
}

namespace {

definition_row read_definition(const pqxx::row& r) {
  return {r[0].as<std::string>(),
          static_cast<std::uint64_t>(r[1].as<std::int64_t>()),
          r[2].as<std::string>(), r[3].as<std::string>(),
          r[4].as<std::int64_t>()};
}

} // namespace

result<std::optional<definition_row>>
pg_store::get_definition(std::string_view name, std::uint64_t version) {
  using res_t = result<std::optional<definition_row>>;
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::read_transaction tx{conn};
    auto rows = tx.exec_params(
      "SELECT name, version, document, source, stored_at FROM definitions "
      "WHERE name = $1 AND version = $2",
      std::string{name}, static_cast<std::int64_t>(version));
    if (rows.empty()) return std::optional<definition_row>{};
    return std::optional<definition_row>{read_definition(rows[0])};
  });
}

result<std::vector<definition_row>>
pg_store::list_definitions(std::string_view name, bool documents) {
  using res_t = result<std::vector<definition_row>>;
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::read_transaction tx{conn};
    std::string sql = std::string{"SELECT name, version, "}
                      + (documents ? "document" : "''")
                      + ", source, stored_at FROM definitions";
    if (!name.empty()) sql += " WHERE name = $1";
    sql += " ORDER BY name, stored_at, version";
    auto rows = name.empty() ? tx.exec(sql)
                             : tx.exec_params(sql, std::string{name});
    std::vector<definition_row> out;
    for (const auto& r : rows)
      out.push_back(read_definition(r));
    return out;
  });
}

template <class F>
auto pg_store::with_writer(F&& fn)
  -> decltype(fn(std::declval<pqxx::connection&>())) {
  std::lock_guard guard{write_mtx_};
  try {
    if (!writer_ || !writer_->is_open()) writer_ = connect();
    return fn(*writer_);
  } catch (const pqxx::broken_connection& e) {
    writer_.reset();
    return to_error(e, true);
  } catch (const std::exception& e) {
    auto err = to_error(e);
    // The server went away mid-statement: connect afresh next time.
    if (err.code == errc::unavailable) writer_.reset();
    return err;
  }
}

constexpr const char* pg_token_columns
  = "id, name, role, queues, workflows, hash, created_at_ms, expires_at_ms, "
    "revoked_at_ms, last_used_ms, cert_subject";

token_row read_token(const pqxx::row& r) {
  return {r[0].as<std::string>(),
          r[1].as<std::string>(),
          r[2].as<std::string>(),
          detail::decode_string_list(r[3].as<std::string>(), "queues"),
          detail::decode_string_list(r[4].as<std::string>(), "workflows"),
          r[5].as<std::string>(),
          r[6].as<std::int64_t>(),
          r[7].as<std::int64_t>(),
          r[8].as<std::int64_t>(),
          r[9].as<std::int64_t>(),
          r[10].as<std::string>()};
}

// The token writes are single statements: autocommit (`nontransaction`)
// makes each one round trip.

status pg_store::put_token(const token_row& row) {
  if (auto st = detail::validate_token(row); !st) return st;
  return with_writer([&](pqxx::connection& conn) -> status {
    pqxx::nontransaction tx{conn};
    auto res = tx.exec_params(
      std::string{"INSERT INTO tokens ("} + pg_token_columns
        + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
          "ON CONFLICT (id) DO NOTHING",
      row.id, row.name, row.role, detail::encode_string_list(row.queues),
      detail::encode_string_list(row.workflows), row.hash, row.created_at_ms,
      row.expires_at_ms, row.revoked_at_ms, row.last_used_ms, row.cert_subject);
    if (res.affected_rows() == 0)
      return make_error(errc::conflict,
                        "a token with id '" + row.id + "' exists");
    return ok_status();
  });
}

result<std::optional<token_row>> pg_store::get_token(std::string_view id) {
  using res_t = result<std::optional<token_row>>;
  std::string key{id};
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::nontransaction tx{conn};
    auto rows = tx.exec_params(std::string{"SELECT "} + pg_token_columns
                                 + " FROM tokens WHERE id = $1",
                               key);
    if (rows.empty()) return std::optional<token_row>{};
    return std::optional<token_row>{read_token(rows[0])};
  });
}

result<std::vector<token_row>> pg_store::list_tokens() {
  using res_t = result<std::vector<token_row>>;
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::nontransaction tx{conn};
    std::vector<token_row> out;
    for (const auto& r : tx.exec(std::string{"SELECT "} + pg_token_columns
                                 + " FROM tokens ORDER BY created_at_ms, id"))
      out.push_back(read_token(r));
    return out;
  });
}

result<bool> pg_store::revoke_token(std::string_view id, std::int64_t at_ms) {
  std::string key{id};
  return with_writer([&](pqxx::connection& conn) -> result<bool> {
    pqxx::nontransaction tx{conn};
    // Matches the row whether or not it is revoked already, so that the
    // affected row count says whether the token exists.
    auto res = tx.exec_params(
      "UPDATE tokens SET revoked_at_ms = CASE WHEN revoked_at_ms = 0 "
      "THEN $2 ELSE revoked_at_ms END WHERE id = $1",
      key, at_ms);
    return res.affected_rows() > 0;
  });
}

status pg_store::touch_token(std::string_view id, std::int64_t at_ms) {
  std::string key{id};
  return with_writer([&](pqxx::connection& conn) -> status {
    pqxx::nontransaction tx{conn};
    tx.exec_params0("UPDATE tokens SET last_used_ms = $2 "
                    "WHERE id = $1 AND last_used_ms < $2",
                    key, at_ms);
    return ok_status();
  });
}

result<std::string> pg_store::claim_workflow(std::string_view name,
                                             std::string_view owner,
                                             std::int64_t at_ms) {
  if (name.empty() || owner.empty())
    return make_error(errc::invalid_argument,
                      "claim_workflow without a name or an owner");
  std::string key{name};
  std::string who{owner};
  return with_writer([&](pqxx::connection& conn) -> result<std::string> {
    pqxx::nontransaction tx{conn};
    // One statement: the inserted row, or (on a conflict) the stored one.
    auto rows = tx.exec_params(
      "WITH ins AS (INSERT INTO workflow_owners (name, owner, claimed_at_ms) "
      "VALUES ($1, $2, $3) "
      "ON CONFLICT (name) DO NOTHING RETURNING owner) "
      "SELECT owner FROM ins UNION ALL "
      "SELECT owner FROM workflow_owners WHERE name = $1 "
      "AND NOT EXISTS (SELECT 1 FROM ins)",
      key, who, at_ms);
    if (!rows.empty()) return rows[0][0].as<std::string>();
    // Another session's claim committed while this statement waited for it:
    // its row is newer than this statement's snapshot; read it again.
    auto again = tx.exec_params(
      "SELECT owner FROM workflow_owners WHERE name = $1", key);
    if (again.empty())
      return make_error(errc::storage_error,
                        "the owner of workflow '" + key + "' was not stored");
    return again[0][0].as<std::string>();
  });
}

constexpr const char* pg_owner_columns
  = "name, owner, claimed_at_ms, previous_owner, replaced_by, replaced_at_ms";

workflow_owner_row read_owner(const pqxx::row& r) {
  workflow_owner_row row;
  row.name = r[0].as<std::string>();
  row.owner = r[1].as<std::string>();
  row.claimed_at_ms = r[2].as<std::int64_t>();
  row.previous_owner = r[3].as<std::string>();
  row.replaced_by = r[4].as<std::string>();
  row.replaced_at_ms = r[5].as<std::int64_t>();
  return row;
}

result<std::optional<workflow_owner_row>>
pg_store::get_workflow_owner(std::string_view name) {
  using res_t = result<std::optional<workflow_owner_row>>;
  std::string key{name};
  return with_reader([&](pqxx::connection& conn) -> res_t {
    pqxx::nontransaction tx{conn};
    auto rows = tx.exec_params(std::string{"SELECT "} + pg_owner_columns
                                 + " FROM workflow_owners WHERE name = $1",
                               key);
    if (rows.empty()) return std::optional<workflow_owner_row>{};
    return std::optional<workflow_owner_row>{read_owner(rows[0])};
  });
}

result<workflow_owner_row>
pg_store::replace_workflow_owner(std::string_view name, std::string_view owner,
                                 std::string_view by, std::int64_t at_ms) {
  if (name.empty() || owner.empty() || by.empty())
    return make_error(errc::invalid_argument,
                      "replace_workflow_owner without a name, an owner or "
                      "who replaces it");
  std::string key{name};
  std::string who{owner};
  std::string replacer{by};
  return with_writer([&](pqxx::connection& conn) -> result<workflow_owner_row> {
    pqxx::nontransaction tx{conn};
    // The SET's right-hand sides read the row as it was: previous_owner
    // gets the owner being replaced.
    auto rows = tx.exec_params(
      std::string{"INSERT INTO workflow_owners ("} + pg_owner_columns
        + ") VALUES ($1, $2, $4, '', $3, $4) "
          "ON CONFLICT (name) DO UPDATE SET "
          "previous_owner = workflow_owners.owner, owner = EXCLUDED.owner, "
          "replaced_by = EXCLUDED.replaced_by, "
          "replaced_at_ms = EXCLUDED.replaced_at_ms RETURNING "
        + pg_owner_columns,
      key, who, replacer, at_ms);
    if (rows.empty())
      return make_error(errc::storage_error,
                        "the owner of workflow '" + key + "' was not stored");
    return read_owner(rows[0]);
  });
}

} // namespace

result<std::shared_ptr<event_store>> open_pg_store(const pg_options& opts) {
  auto store = std::make_shared<pg_store>(opts);
  if (auto st = store->open(); !st) return std::move(st).err();
  return std::shared_ptr<event_store>{std::move(store)};
}

} // namespace cerebelum::eventstore
