#include "eventstore/sqlite_store.hpp"

#include <filesystem>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <sqlite3.h>

#include "eventstore/sqlite_db.hpp"
#include "eventstore/sqlite_open_check.hpp"
#include "eventstore/sqlite_schema.hpp"
#include "eventstore/store_util.hpp"

namespace cerebelum::eventstore {

namespace {

using detail::sqlite_db;
using detail::sqlite_failure;
using detail::sqlite_stmt;

constexpr const char* schema_component = "eventstore";

constexpr const char* execution_columns
  = "execution_id, workflow, workflow_version, status, phase, next_seq, "
    "wake_at, created_at, updated_at";

constexpr const char* timer_columns
  = "execution_id, timer_id, fire_at, purpose, generation";

error to_error(const sqlite_failure& e, const std::string& path,
               bool possibly_committed = false) {
  if (e.code() == SQLITE_CORRUPT || e.code() == SQLITE_NOTADB)
    return make_error(errc::corrupt_store,
                      std::string{"sqlite: "} + e.what() + ": the store file "
                        + path + " is damaged; restore it from a backup",
                      false, possibly_committed);
  bool retryable = e.code() == SQLITE_BUSY || e.code() == SQLITE_LOCKED
                   || e.code() == SQLITE_IOERR || e.code() == SQLITE_FULL;
  auto code = e.code() == SQLITE_BUSY ? errc::unavailable : errc::storage_error;
  return make_error(code, std::string{"sqlite: "} + e.what(), retryable,
                    possibly_committed);
}

/// Executions named in the refusal of a damaged store, at most.
constexpr std::size_t max_listed_executions = 10;

/// Reads every remaining row of `st`, which selects `timer_columns`.
std::vector<timer_row> read_timers(sqlite_stmt& st) {
  std::vector<timer_row> out;
  while (st.step())
    out.push_back(
      {st.text(0), st.text(1), st.int64(2), st.text(3), st.int64(4)});
  return out;
}

execution_row read_execution(const sqlite_stmt& st) {
  execution_row row;
  row.execution_id = st.text(0);
  row.workflow = st.text(1);
  row.workflow_version = static_cast<std::uint64_t>(st.int64(2));
  row.status = parse_status(st.text(3)).value_or(execution_status::failed);
  row.phase = st.text(4);
  row.next_seq = st.int64(5);
  if (!st.is_null(6)) row.wake_at_ms = st.int64(6);
  row.created_at_ms = st.int64(7);
  row.updated_at_ms = st.int64(8);
  return row;
}

/// Prepared statements of the writer connection.
struct write_stmts {
  explicit write_stmts(sqlite_db& db)
    : index_state(db, "SELECT next_seq, status, workflow FROM executions "
                      "WHERE execution_id = ?"),
      insert_event(db, "INSERT INTO events VALUES (?, ?, ?, ?, ?)"),
      upsert_index(db,
                   "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (execution_id) DO UPDATE SET "
                   "workflow = excluded.workflow, "
                   "workflow_version = excluded.workflow_version, "
                   "status = excluded.status, phase = excluded.phase, "
                   "next_seq = excluded.next_seq, wake_at = excluded.wake_at, "
                   "updated_at = excluded.updated_at"),
      update_index(db, "UPDATE executions SET workflow_version = ?, "
                       "phase = ?, next_seq = ?, wake_at = ?, updated_at = ? "
                       "WHERE execution_id = ?"),
      upsert_timer(db, "INSERT INTO timers VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (execution_id, timer_id) DO UPDATE SET "
                       "fire_at = excluded.fire_at, "
                       "purpose = excluded.purpose, "
                       "generation = excluded.generation"),
      delete_timer(db, "DELETE FROM timers WHERE execution_id = ? "
                       "AND timer_id = ?"),
      upsert_task(db, "INSERT INTO tasks VALUES "
                      "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (task_id) DO UPDATE SET "
                      "queue = excluded.queue, step = excluded.step, "
                      "attempt = excluded.attempt, "
                      "attempt_token = excluded.attempt_token, "
                      "idempotency_key = excluded.idempotency_key, "
                      "payload = excluded.payload, "
                      "available_at = excluded.available_at, "
                      "lease_owner = excluded.lease_owner, "
                      "lease_expires_at = excluded.lease_expires_at "
                      "WHERE tasks.execution_id = excluded.execution_id"),
      delete_task(db, "DELETE FROM tasks WHERE task_id = ? "
                      "AND execution_id = ?"),
      insert_dead_letter(db, "INSERT INTO dead_letters (task_id, "
                             "execution_id, queue, attempt, payload, error, "
                             "failed_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      delete_dead_letter(db, "DELETE FROM dead_letters WHERE id = ? "
                             "AND execution_id = ?"),
      insert_definition(db, "INSERT INTO definitions VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (name, version) DO NOTHING") {
    // nop
  }

  sqlite_stmt index_state;
  sqlite_stmt insert_event;
  sqlite_stmt upsert_index;
  sqlite_stmt update_index;
  sqlite_stmt upsert_timer;
  sqlite_stmt delete_timer;
  sqlite_stmt upsert_task;
  sqlite_stmt delete_task;
  sqlite_stmt insert_dead_letter;
  sqlite_stmt delete_dead_letter;
  sqlite_stmt insert_definition;
};

void insert_definition(sqlite_stmt& st, const definition_row& d) {
  st.bind(1, d.name)
    .bind(2, static_cast<std::int64_t>(d.version))
    .bind(3, d.document)
    .bind(4, d.source)
    .bind(5, d.stored_at_ms)
    .run();
}

definition_row read_definition(const sqlite_stmt& st, bool document) {
  definition_row row;
  row.name = st.text(0);
  row.version = static_cast<std::uint64_t>(st.int64(1));
  if (document) row.document = st.text(2);
  row.source = st.text(3);
  row.stored_at_ms = st.int64(4);
  return row;
}

/// An execution's index row as the writer's transaction sees it.
struct index_state {
  std::int64_t next_seq = 0;
  std::string status;
  std::string workflow;
  bool exists = false;
};

using index_cache = std::unordered_map<std::string, index_state>;

class sqlite_store final : public event_store {
 public:
  explicit sqlite_store(sqlite_options opts) : opts_(std::move(opts)) {
    // Absolute, so that messages name the file whatever the working
    // directory of the reader.
    std::error_code ec;
    auto dir = std::filesystem::absolute(opts_.data_dir, ec);
    if (!ec) opts_.data_dir = dir.lexically_normal().string();
    path_ = (std::filesystem::path{opts_.data_dir} / opts_.file_name).string();
  }

  /// Opens the writer connection and creates or validates the schema.
  status open() {
    try {
      std::error_code ec;
      std::filesystem::create_directories(opts_.data_dir, ec);
      if (ec)
        return make_error(errc::storage_error, "cannot create data directory "
                                                 + opts_.data_dir + ": "
                                                 + ec.message());
      auto pre = detail::check_before_open(opts_.data_dir, opts_.file_name);
      if (!pre) return std::move(pre).err();
      writer_ = connect(opts_.create_if_missing);
      if (!pre->fresh) {
        auto problems = detail::check_pages(*writer_, opts_.open_check);
        if (!problems.empty())
          return detail::damaged_store_error(
            path_, opts_.open_check, problems,
            detail::survey_damage(*writer_, max_listed_executions));
      }
      writer_->exec("PRAGMA journal_mode = WAL");
      if (auto st = ensure_schema(pre->marker); !st) return st;
      if (!pre->marker)
        if (auto st = detail::write_store_marker(opts_.data_dir,
                                                 opts_.file_name);
            !st)
          return st;
      stmts_ = std::make_unique<write_stmts>(*writer_);
      return ok_status();
    } catch (const sqlite_failure& e) {
      return to_error(e, path_);
    } catch (const std::exception& e) {
      return make_error(errc::storage_error,
                        std::string{"sqlite: cannot open: "} + e.what());
    }
  }

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

  result<bool> revoke_token(std::string_view id, std::int64_t at_ms) override;

  status touch_token(std::string_view id, std::int64_t at_ms) override;

  result<std::string> claim_workflow(std::string_view name,
                                     std::string_view owner,
                                     std::int64_t at_ms) override;
  result<std::optional<workflow_owner_row>>
  get_workflow_owner(std::string_view name) override;
  result<workflow_owner_row>
  replace_workflow_owner(std::string_view name, std::string_view owner,
                         std::string_view by, std::int64_t at_ms) override;

  int schema_version() const noexcept override {
    return current_schema_version;
  }

 private:
  std::unique_ptr<sqlite_db> connect(bool create) {
    auto db = std::make_unique<sqlite_db>(path_, create);
    sqlite3_busy_timeout(db->handle(),
                         static_cast<int>(opts_.busy_timeout.count()));
    db->exec("PRAGMA synchronous = FULL");
    return db;
  }

  /// Creates the schema in a database without tables, unless `marker` says
  /// that a store existed here; validates the version of an existing one.
  status ensure_schema(const std::optional<detail::store_marker>& marker);

  /// Validates `req` and checks its expected seq; returns the error that
  /// rejects it, if any.
  std::optional<error> admit(const append_request& req, index_cache& cache);

  /// Runs the group in one transaction; sets `retry_isolated` (and returns
  /// nothing) when the fast path hit a constraint.
  std::vector<append_result> try_batch(std::span<const append_request> reqs,
                                       bool isolated, bool& retry_isolated);

  /// Applies one validated, conflict-checked request inside the open
  /// transaction and advances `state`.
  void apply(const append_request& req, index_state& state);

  /// `apply` inside a savepoint; a constraint failure rejects only `req`.
  std::optional<error> apply_isolated(const append_request& req,
                                      index_state& state);

  /// Runs `fn(db)` on a pooled reader connection.
  template <class F>
  auto with_reader(F&& fn) -> decltype(fn(std::declval<sqlite_db&>()));

  /// Runs `fn(db)` on the writer connection under the writer's mutex: one
  /// small write in autocommit mode, between two groups of appends.
  template <class F>
  auto with_writer(F&& fn) -> decltype(fn(std::declval<sqlite_db&>()));

  result<execution_page> list(const list_filter& filter, bool open_only,
                              std::size_t page_size,
                              std::string_view page_token);

  sqlite_options opts_;
  std::string path_;
  std::mutex write_mtx_;
  std::unique_ptr<sqlite_db> writer_;
  std::unique_ptr<write_stmts> stmts_;
  std::mutex pool_mtx_;
  std::vector<std::unique_ptr<sqlite_db>> readers_;
};

status
sqlite_store::ensure_schema(const std::optional<detail::store_marker>& marker) {
  writer_->exec("BEGIN IMMEDIATE");
  try {
    sqlite_stmt tables{*writer_, "SELECT count(*), "
                                 "sum(name = 'schema_version') "
                                 "FROM sqlite_master WHERE type = 'table'"};
    tables.step();
    auto n_tables = tables.int64(0);
    auto has_version = tables.int64(1) > 0;
    if (!has_version) {
      if (n_tables > 0 || !opts_.create_if_missing) {
        writer_->exec("ROLLBACK");
        return make_error(errc::schema_incompatible,
                          path_
                            + " is not a Cerebelum event store (it has no "
                              "schema_version table): point the node at an "
                              "empty data directory");
      }
      if (marker) {
        writer_->exec("ROLLBACK");
        return detail::lost_store_error(path_, "has no tables", *marker);
      }
      writer_->exec(detail::sqlite_schema_v1);
      writer_->exec(detail::sqlite_schema_v2);
      writer_->exec(detail::sqlite_schema_v4);
      writer_->exec(detail::sqlite_schema_v5);
      writer_->exec(detail::sqlite_schema_v6);
      sqlite_stmt ins{*writer_, "INSERT INTO schema_version VALUES (?, ?, ?)"};
      ins.bind(1, schema_component)
        .bind(2, std::int64_t{current_schema_version})
        .bind(3, "cerebelum")
        .run();
      writer_->exec("COMMIT");
      return ok_status();
    }
    sqlite_stmt ver{*writer_, "SELECT version FROM schema_version "
                              "WHERE component = ?"};
    ver.bind(1, schema_component);
    int stored = ver.step() ? static_cast<int>(ver.int64(0)) : 0;
    ver.reset();
    // Version 1 -> 2: the definitions table; 2 -> 3: a new core event
    // type, nothing to change; 3 -> 4: the tokens table; 4 -> 5: its
    // cert_subject column and the workflow_owners table; 5 -> 6: the
    // replacement columns of workflow_owners. In the same transaction as
    // the version they bring.
    if (stored == 1) writer_->exec(detail::sqlite_schema_v2);
    if (stored >= 1 && stored <= 3) writer_->exec(detail::sqlite_schema_v4);
    if (stored >= 1 && stored <= 4) writer_->exec(detail::sqlite_schema_v5);
    if (stored >= 1 && stored <= 5) writer_->exec(detail::sqlite_schema_v6);
    if (stored >= 1 && stored < current_schema_version) {
      sqlite_stmt up{*writer_, "UPDATE schema_version SET version = ?, "
                               "written_by = ? WHERE component = ?"};
      up.bind(1, std::int64_t{current_schema_version})
        .bind(2, "cerebelum")
        .bind(3, schema_component)
        .run();
      stored = current_schema_version;
    }
    writer_->exec("COMMIT");
    return check_schema_version(stored, path_);
  } catch (...) {
    sqlite3_exec(writer_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void sqlite_store::apply(const append_request& req, index_state& state) {
  const auto& id = req.execution_id;
  auto seq = req.expected_next_seq;
  for (const auto& ev : req.events)
    stmts_->insert_event.bind(1, id)
      .bind(2, seq++)
      .bind(3, std::int64_t{ev.type})
      .bind_blob(4, ev.payload)
      .bind(5, ev.recorded_at_ms)
      .run();
  const auto& ix = req.index;
  std::string status = to_string(ix.status);
  if (state.exists && state.status == status && state.workflow == ix.workflow) {
    // Only unindexed columns change: no index entry is rewritten.
    stmts_->update_index.bind(1, static_cast<std::int64_t>(ix.workflow_version))
      .bind(2, ix.phase)
      .bind(3, seq)
      .bind(4, ix.wake_at_ms)
      .bind(5, ix.updated_at_ms)
      .bind(6, id)
      .run();
  } else {
    stmts_->upsert_index.bind(1, id)
      .bind(2, ix.workflow)
      .bind(3, static_cast<std::int64_t>(ix.workflow_version))
      .bind(4, status)
      .bind(5, ix.phase)
      .bind(6, seq)
      .bind(7, ix.wake_at_ms)
      .bind(8, ix.created_at_ms)
      .bind(9, ix.updated_at_ms)
      .run();
  }
  state = {seq, std::move(status), ix.workflow, true};
  for (const auto& t : req.timer_upserts)
    stmts_->upsert_timer.bind(1, id)
      .bind(2, t.timer_id)
      .bind(3, t.fire_at_ms)
      .bind(4, t.purpose)
      .bind(5, t.generation)
      .run();
  for (const auto& t : req.timer_deletes)
    stmts_->delete_timer.bind(1, id).bind(2, t).run();
  for (const auto& t : req.task_upserts)
    stmts_->upsert_task.bind(1, t.task_id)
      .bind(2, id)
      .bind(3, t.queue)
      .bind(4, t.step)
      .bind(5, std::int64_t{t.attempt})
      .bind(6, t.attempt_token)
      .bind(7, t.idempotency_key)
      .bind_blob(8, t.payload)
      .bind(9, t.available_at_ms)
      .bind(10, t.lease_owner)
      .bind(11, t.lease_expires_at_ms)
      .run();
  for (const auto& t : req.task_deletes)
    stmts_->delete_task.bind(1, t).bind(2, id).run();
  for (const auto& d : req.dead_letter_inserts)
    stmts_->insert_dead_letter.bind(1, d.task_id)
      .bind(2, id)
      .bind(3, d.queue)
      .bind(4, std::int64_t{d.attempt})
      .bind_blob(5, d.payload)
      .bind(6, d.error)
      .bind(7, d.failed_at_ms)
      .run();
  for (auto d : req.dead_letter_deletes)
    stmts_->delete_dead_letter.bind(1, d).bind(2, id).run();
  for (const auto& d : req.definition_inserts)
    insert_definition(stmts_->insert_definition, d);
}

std::optional<error> sqlite_store::admit(const append_request& req,
                                         index_cache& cache) {
  if (auto st = validate(req, opts_.limits); !st) return std::move(st).err();
  auto it = cache.find(req.execution_id);
  if (it == cache.end()) {
    index_state state;
    auto& st = stmts_->index_state;
    st.bind(1, req.execution_id);
    if (st.step()) {
      state = {st.int64(0), st.text(1), st.text(2), true};
    }
    st.reset();
    it = cache.emplace(req.execution_id, std::move(state)).first;
  }
  if (it->second.next_seq != req.expected_next_seq)
    return make_error(errc::conflict, "execution '" + req.execution_id
                                        + "' expected seq "
                                        + std::to_string(req.expected_next_seq)
                                        + " but its next seq is "
                                        + std::to_string(it->second.next_seq));
  return std::nullopt;
}

std::vector<append_result>
sqlite_store::try_batch(std::span<const append_request> reqs, bool isolated,
                        bool& retry_isolated) {
  std::vector<append_result> out;
  out.reserve(reqs.size());
  // Index rows as seen by this transaction, so that two appends to one
  // execution in the same group see each other.
  index_cache cache;
  writer_->exec("BEGIN IMMEDIATE");
  try {
    for (const auto& req : reqs) {
      if (auto err = admit(req, cache)) {
        out.emplace_back(std::move(*err));
        continue;
      }
      auto& state = cache[req.execution_id];
      if (!isolated) {
        apply(req, state);
      } else if (auto err = apply_isolated(req, state)) {
        out.emplace_back(std::move(*err));
        continue;
      }
      out.emplace_back(append_ack{req.expected_next_seq, state.next_seq});
    }
  } catch (const sqlite_failure& e) {
    sqlite3_exec(writer_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    if (!isolated && e.is_data_error()) {
      retry_isolated = true;
      return {};
    }
    return std::vector<append_result>(reqs.size(),
                                      append_result{to_error(e, path_)});
  } catch (...) {
    sqlite3_exec(writer_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw; // reported by append_batch
  }
  try {
    writer_->exec("COMMIT");
  } catch (const sqlite_failure& e) {
    // A failed COMMIT may have written part of the WAL frames: unless the
    // lock was simply busy, the outcome is unknown.
    bool doubt = e.code() != SQLITE_BUSY;
    sqlite3_exec(writer_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    auto err = to_error(e, path_, doubt);
    for (auto& r : out)
      if (r.ok()) r = append_result{err};
  }
  return out;
}

std::optional<error> sqlite_store::apply_isolated(const append_request& req,
                                                  index_state& state) {
  auto saved = state;
  writer_->exec("SAVEPOINT one_append");
  try {
    apply(req, state);
    writer_->exec("RELEASE one_append");
    return std::nullopt;
  } catch (const sqlite_failure& e) {
    if (!e.is_data_error()) throw;
    writer_->exec("ROLLBACK TO one_append");
    writer_->exec("RELEASE one_append");
    state = std::move(saved);
    return make_error(errc::invalid_argument, "append to execution '"
                                                + req.execution_id
                                                + "' rejected: " + e.what());
  }
}

std::vector<append_result>
sqlite_store::append_batch(std::span<const append_request> reqs) {
  std::lock_guard guard{write_mtx_};
  try {
    // Pre-validation makes the fast path conflict-free; a constraint failure
    // can only come from data the checks did not foresee, and then each
    // append is retried in its own savepoint so that it fails alone.
    bool retry_isolated = false;
    auto out = try_batch(reqs, false, retry_isolated);
    if (retry_isolated) out = try_batch(reqs, true, retry_isolated);
    return out;
  } catch (const sqlite_failure& e) {
    return std::vector<append_result>(reqs.size(),
                                      append_result{to_error(e, path_)});
  } catch (const std::exception& e) {
    return std::vector<append_result>(
      reqs.size(), append_result{make_error(
                     errc::storage_error, std::string{"sqlite: "} + e.what())});
  }
}

/// Most idle reader connections the store keeps: as many as read at once
/// under load (API threads), so that a busy node does not open and close
/// connections (a connect maps the WAL index and reads the schema).
constexpr std::size_t max_idle_readers = 32;

template <class F>
auto sqlite_store::with_reader(F&& fn)
  -> decltype(fn(std::declval<sqlite_db&>())) {
  std::unique_ptr<sqlite_db> db;
  try {
    {
      std::lock_guard guard{pool_mtx_};
      if (!readers_.empty()) {
        db = std::move(readers_.back());
        readers_.pop_back();
      }
    }
    if (!db) db = connect(false);
    auto res = fn(*db);
    std::lock_guard guard{pool_mtx_};
    if (readers_.size() < max_idle_readers) readers_.push_back(std::move(db));
    return res;
  } catch (const sqlite_failure& e) {
    return to_error(e, path_);
  } catch (const std::exception& e) {
    return make_error(errc::storage_error, std::string{"sqlite: "} + e.what());
  }
}

result<std::size_t> sqlite_store::read(std::string_view execution_id,
                                       std::int64_t from_seq,
                                       const read_callback& fn) {
  if (from_seq < 0)
    return make_error(errc::invalid_argument, "read with a negative from_seq "
                                                + std::to_string(from_seq));
  return with_reader([&](sqlite_db& db) -> result<std::size_t> {
    sqlite_stmt st{db, "SELECT seq, type, payload, recorded_at FROM events "
                       "WHERE execution_id = ? AND seq >= ? ORDER BY seq"};
    st.bind(1, execution_id).bind(2, from_seq);
    std::size_t n = 0;
    stored_event ev;
    while (st.step()) {
      ev.seq = st.int64(0);
      ev.type = static_cast<std::int32_t>(st.int64(1));
      ev.payload = st.blob(2);
      ev.recorded_at_ms = st.int64(3);
      ++n;
      if (!fn(ev)) break;
    }
    return n;
  });
}

result<std::optional<execution_row>>
sqlite_store::get_execution(std::string_view execution_id) {
  using res_t = result<std::optional<execution_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + execution_columns
                         + " FROM executions WHERE execution_id = ?"};
    st.bind(1, execution_id);
    if (!st.step()) return std::optional<execution_row>{};
    return std::optional<execution_row>{read_execution(st)};
  });
}

result<execution_page> sqlite_store::list(const list_filter& filter,
                                          bool open_only, std::size_t page_size,
                                          std::string_view page_token) {
  auto pos = detail::decode_page_token(page_token);
  if (!pos) return std::move(pos).err();
  auto limit = detail::clamp_page_size(page_size);
  std::string sql = std::string{"SELECT "} + execution_columns
                    + " FROM executions WHERE 1";
  if (filter.status) sql += " AND status = :status";
  if (open_only)
    sql += " AND status NOT IN ('completed', 'failed', 'cancelled')";
  if (filter.workflow) sql += " AND workflow = :workflow";
  if (filter.created_from_ms) sql += " AND created_at >= :from";
  if (filter.created_to_ms) sql += " AND created_at < :to";
  if (*pos) sql += " AND (created_at, execution_id) > (:after_t, :after_id)";
  sql += " ORDER BY created_at, execution_id LIMIT :limit";
  return with_reader([&](sqlite_db& db) -> result<execution_page> {
    sqlite_stmt st{db, sql};
    auto idx = [&](const char* name) {
      return st.param(name);
    };
    if (filter.status) st.bind(idx(":status"), to_string(*filter.status));
    if (filter.workflow) st.bind(idx(":workflow"), *filter.workflow);
    if (filter.created_from_ms) st.bind(idx(":from"), *filter.created_from_ms);
    if (filter.created_to_ms) st.bind(idx(":to"), *filter.created_to_ms);
    if (*pos)
      st.bind(idx(":after_t"), (*pos)->created_at_ms)
        .bind(idx(":after_id"), (*pos)->execution_id);
    st.bind(idx(":limit"), static_cast<std::int64_t>(limit));
    execution_page page;
    while (st.step())
      page.rows.push_back(read_execution(st));
    if (page.rows.size() == limit)
      page.next_page_token = detail::encode_page_token(
        {page.rows.back().created_at_ms, page.rows.back().execution_id});
    return page;
  });
}

result<std::vector<timer_row>> sqlite_store::due_timers(std::int64_t until_ms,
                                                        std::size_t limit) {
  using res_t = result<std::vector<timer_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + timer_columns
                         + " FROM timers WHERE fire_at <= ? "
                           "ORDER BY fire_at, execution_id, timer_id LIMIT ?"};
    st.bind(1, until_ms).bind(2, static_cast<std::int64_t>(limit));
    return read_timers(st);
  });
}

result<std::vector<timer_row>>
sqlite_store::timers_of(std::string_view execution_id) {
  using res_t = result<std::vector<timer_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + timer_columns
                         + " FROM timers WHERE execution_id = ? "
                           "ORDER BY timer_id"};
    st.bind(1, execution_id);
    return read_timers(st);
  });
}

namespace {

constexpr const char* task_columns
  = "task_id, execution_id, queue, step, attempt, attempt_token, "
    "idempotency_key, payload, available_at, lease_owner, lease_expires_at";

std::vector<task_row> read_tasks(sqlite_stmt& st) {
  std::vector<task_row> out;
  while (st.step()) {
    task_row t{st.text(0),
               st.text(1),
               st.text(2),
               st.text(3),
               static_cast<std::int32_t>(st.int64(4)),
               st.text(5),
               st.text(6),
               st.blob(7),
               st.int64(8),
               st.text(9),
               std::nullopt};
    if (!st.is_null(10)) t.lease_expires_at_ms = st.int64(10);
    out.push_back(std::move(t));
  }
  return out;
}

constexpr const char* dead_letter_columns
  = "id, task_id, execution_id, queue, attempt, payload, error, failed_at";

std::vector<dead_letter_row> read_dead_letters(sqlite_stmt& st) {
  std::vector<dead_letter_row> out;
  while (st.step())
    out.push_back({st.int64(0), st.text(1), st.text(2), st.text(3),
                   static_cast<std::int32_t>(st.int64(4)), st.blob(5),
                   st.text(6), st.int64(7)});
  return out;
}

} // namespace

result<std::vector<task_row>>
sqlite_store::tasks_of(std::string_view execution_id) {
  using res_t = result<std::vector<task_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + task_columns
                         + " FROM tasks WHERE execution_id = ? "
                           "ORDER BY task_id"};
    st.bind(1, execution_id);
    return read_tasks(st);
  });
}

result<task_page> sqlite_store::all_tasks(std::size_t page_size,
                                          std::string_view page_token) {
  auto limit = detail::clamp_page_size(page_size);
  return with_reader([&](sqlite_db& db) -> result<task_page> {
    sqlite_stmt st{db, std::string{"SELECT "} + task_columns
                         + " FROM tasks WHERE task_id > ? "
                           "ORDER BY task_id LIMIT ?"};
    st.bind(1, page_token).bind(2, static_cast<std::int64_t>(limit));
    task_page page;
    page.rows = read_tasks(st);
    if (page.rows.size() == limit)
      page.next_page_token = page.rows.back().task_id;
    return page;
  });
}

result<dead_letter_page>
sqlite_store::list_dead_letters(std::string_view queue, std::size_t page_size,
                                std::string_view page_token) {
  auto after = detail::decode_id_token(page_token);
  if (!after) return std::move(after).err();
  auto limit = detail::clamp_page_size(page_size);
  return with_reader([&](sqlite_db& db) -> result<dead_letter_page> {
    std::string sql = std::string{"SELECT "} + dead_letter_columns
                      + " FROM dead_letters WHERE id > ?";
    if (!queue.empty()) sql += " AND queue = ?";
    sql += " ORDER BY id LIMIT ?";
    sqlite_stmt st{db, sql};
    int i = 1;
    st.bind(i++, *after);
    if (!queue.empty()) st.bind(i++, queue);
    st.bind(i, static_cast<std::int64_t>(limit));
    dead_letter_page page;
    page.rows = read_dead_letters(st);
    if (page.rows.size() == limit)
      page.next_page_token = std::to_string(page.rows.back().id);
    return page;
  });
}

result<std::optional<dead_letter_row>>
sqlite_store::get_dead_letter(std::int64_t id) {
  using res_t = result<std::optional<dead_letter_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + dead_letter_columns
                         + " FROM dead_letters WHERE id = ?"};
    st.bind(1, id);
    auto rows = read_dead_letters(st);
    if (rows.empty()) return std::optional<dead_letter_row>{};
    return std::optional<dead_letter_row>{std::move(rows.front())};
  });
}

status sqlite_store::put_definitions(std::span<const definition_row> rows) {
  std::lock_guard guard{write_mtx_};
  try {
    writer_->exec("BEGIN IMMEDIATE");
    try {
      for (const auto& d : rows)
        insert_definition(stmts_->insert_definition, d);
    } catch (...) {
      sqlite3_exec(writer_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    writer_->exec("COMMIT");
    return ok_status();
  } catch (const sqlite_failure& e) {
    sqlite3_exec(writer_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return to_error(e, path_);
  } catch (const std::exception& e) {
    return make_error(errc::storage_error, std::string{"sqlite: "} + e.what());
  }
}

result<std::optional<definition_row>>
sqlite_store::get_definition(std::string_view name, std::uint64_t version) {
  using res_t = result<std::optional<definition_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, "SELECT name, version, document, source, stored_at "
                       "FROM definitions WHERE name = ? AND version = ?"};
    st.bind(1, name).bind(2, static_cast<std::int64_t>(version));
    if (!st.step()) return std::optional<definition_row>{};
    return std::optional<definition_row>{read_definition(st, true)};
  });
}

result<std::vector<definition_row>>
sqlite_store::list_definitions(std::string_view name, bool documents) {
  using res_t = result<std::vector<definition_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    std::string sql = std::string{"SELECT name, version, "}
                      + (documents ? "document" : "''")
                      + ", source, stored_at FROM definitions";
    if (!name.empty()) sql += " WHERE name = ?";
    sql += " ORDER BY name, stored_at, version";
    sqlite_stmt st{db, sql};
    if (!name.empty()) st.bind(1, name);
    std::vector<definition_row> out;
    while (st.step())
      out.push_back(read_definition(st, documents));
    return out;
  });
}

template <class F>
auto sqlite_store::with_writer(F&& fn)
  -> decltype(fn(std::declval<sqlite_db&>())) {
  std::lock_guard guard{write_mtx_};
  try {
    return fn(*writer_);
  } catch (const sqlite_failure& e) {
    return to_error(e, path_);
  } catch (const std::exception& e) {
    return make_error(errc::storage_error, std::string{"sqlite: "} + e.what());
  }
}

constexpr const char* token_columns
  = "id, name, role, queues, workflows, hash, created_at_ms, expires_at_ms, "
    "revoked_at_ms, last_used_ms, cert_subject";

token_row read_token(const sqlite_stmt& st) {
  return {st.text(0),
          st.text(1),
          st.text(2),
          detail::decode_string_list(st.text(3), "queues"),
          detail::decode_string_list(st.text(4), "workflows"),
          st.text(5),
          st.int64(6),
          st.int64(7),
          st.int64(8),
          st.int64(9),
          st.text(10)};
}

status sqlite_store::put_token(const token_row& row) {
  if (auto st = detail::validate_token(row); !st) return st;
  return with_writer([&](sqlite_db& db) -> status {
    sqlite_stmt st{db, std::string{"INSERT INTO tokens ("} + token_columns
                         + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (id) DO NOTHING"};
    st.bind(1, row.id)
      .bind(2, row.name)
      .bind(3, row.role)
      .bind(4, detail::encode_string_list(row.queues))
      .bind(5, detail::encode_string_list(row.workflows))
      .bind(6, row.hash)
      .bind(7, row.created_at_ms)
      .bind(8, row.expires_at_ms)
      .bind(9, row.revoked_at_ms)
      .bind(10, row.last_used_ms)
      .bind(11, row.cert_subject)
      .run();
    if (sqlite3_changes(db.handle()) == 0)
      return make_error(errc::conflict,
                        "a token with id '" + row.id + "' exists");
    return ok_status();
  });
}

result<std::optional<token_row>> sqlite_store::get_token(std::string_view id) {
  using res_t = result<std::optional<token_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + token_columns
                         + " FROM tokens WHERE id = ?"};
    st.bind(1, id);
    if (!st.step()) return std::optional<token_row>{};
    return std::optional<token_row>{read_token(st)};
  });
}

result<std::vector<token_row>> sqlite_store::list_tokens() {
  using res_t = result<std::vector<token_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + token_columns
                         + " FROM tokens ORDER BY created_at_ms, id"};
    std::vector<token_row> out;
    while (st.step())
      out.push_back(read_token(st));
    return out;
  });
}

result<bool> sqlite_store::revoke_token(std::string_view id,
                                        std::int64_t at_ms) {
  return with_writer([&](sqlite_db& db) -> result<bool> {
    // Matches the row whether or not it is revoked already, so that the
    // change count says whether the token exists.
    sqlite_stmt st{db, "UPDATE tokens SET revoked_at_ms = CASE "
                       "WHEN revoked_at_ms = 0 THEN ? ELSE revoked_at_ms END "
                       "WHERE id = ?"};
    st.bind(1, at_ms).bind(2, id).run();
    return sqlite3_changes(db.handle()) > 0;
  });
}

status sqlite_store::touch_token(std::string_view id, std::int64_t at_ms) {
  return with_writer([&](sqlite_db& db) -> status {
    sqlite_stmt st{db, "UPDATE tokens SET last_used_ms = ? "
                       "WHERE id = ? AND last_used_ms < ?"};
    st.bind(1, at_ms).bind(2, id).bind(3, at_ms).run();
    return ok_status();
  });
}

result<std::string> sqlite_store::claim_workflow(std::string_view name,
                                                 std::string_view owner,
                                                 std::int64_t at_ms) {
  if (name.empty() || owner.empty())
    return make_error(errc::invalid_argument,
                      "claim_workflow without a name or an owner");
  return with_writer([&](sqlite_db& db) -> result<std::string> {
    sqlite_stmt ins{db, "INSERT INTO workflow_owners "
                        "(name, owner, claimed_at_ms) VALUES (?, ?, ?) "
                        "ON CONFLICT (name) DO NOTHING"};
    ins.bind(1, name).bind(2, owner).bind(3, at_ms).run();
    sqlite_stmt sel{db, "SELECT owner FROM workflow_owners WHERE name = ?"};
    sel.bind(1, name);
    if (!sel.step())
      return make_error(errc::storage_error, "the owner of workflow '"
                                               + std::string{name}
                                               + "' was not stored");
    return sel.text(0);
  });
}

constexpr const char* owner_columns
  = "name, owner, claimed_at_ms, previous_owner, replaced_by, replaced_at_ms";

workflow_owner_row read_owner(sqlite_stmt& st) {
  workflow_owner_row row;
  row.name = st.text(0);
  row.owner = st.text(1);
  row.claimed_at_ms = st.int64(2);
  row.previous_owner = st.text(3);
  row.replaced_by = st.text(4);
  row.replaced_at_ms = st.int64(5);
  return row;
}

result<std::optional<workflow_owner_row>>
sqlite_store::get_workflow_owner(std::string_view name) {
  using res_t = result<std::optional<workflow_owner_row>>;
  return with_reader([&](sqlite_db& db) -> res_t {
    sqlite_stmt st{db, std::string{"SELECT "} + owner_columns
                         + " FROM workflow_owners WHERE name = ?"};
    st.bind(1, name);
    if (!st.step()) return std::optional<workflow_owner_row>{};
    return std::optional<workflow_owner_row>{read_owner(st)};
  });
}

result<workflow_owner_row>
sqlite_store::replace_workflow_owner(std::string_view name,
                                     std::string_view owner,
                                     std::string_view by, std::int64_t at_ms) {
  if (name.empty() || owner.empty() || by.empty())
    return make_error(errc::invalid_argument,
                      "replace_workflow_owner without a name, an owner or "
                      "who replaces it");
  return with_writer([&](sqlite_db& db) -> result<workflow_owner_row> {
    // The SET's right-hand sides read the row as it was: previous_owner
    // gets the owner being replaced.
    sqlite_stmt st{db, std::string{"INSERT INTO workflow_owners ("}
                         + owner_columns
                         + ") VALUES (?1, ?2, ?4, '', ?3, ?4) "
                           "ON CONFLICT (name) DO UPDATE SET "
                           "previous_owner = workflow_owners.owner, "
                           "owner = excluded.owner, "
                           "replaced_by = excluded.replaced_by, "
                           "replaced_at_ms = excluded.replaced_at_ms "
                           "RETURNING "
                         + owner_columns};
    st.bind(1, name).bind(2, owner).bind(3, by).bind(4, at_ms);
    if (!st.step())
      return make_error(errc::storage_error, "the owner of workflow '"
                                               + std::string{name}
                                               + "' was not stored");
    auto row = read_owner(st);
    // Runs the statement to its end so that it completes.
    while (st.step()) {
    }
    return row;
  });
}

} // namespace

const char* to_string(sqlite_open_check x) noexcept {
  switch (x) {
    case sqlite_open_check::none: return "none";
    case sqlite_open_check::quick: return "quick";
    case sqlite_open_check::full: return "full";
  }
  return "full";
}

std::optional<sqlite_open_check> parse_sqlite_open_check(std::string_view x) {
  for (auto level : {sqlite_open_check::none, sqlite_open_check::quick,
                     sqlite_open_check::full})
    if (x == to_string(level)) return level;
  return std::nullopt;
}

result<std::shared_ptr<event_store>>
open_sqlite_store(const sqlite_options& opts) {
  auto store = std::make_shared<sqlite_store>(opts);
  if (auto st = store->open(); !st) return std::move(st).err();
  return std::shared_ptr<event_store>{std::move(store)};
}

} // namespace cerebelum::eventstore
