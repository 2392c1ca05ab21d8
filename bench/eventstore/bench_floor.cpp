#include "bench/eventstore/bench_floor.hpp"

#include <chrono>
#include <stdexcept>
#include <tuple>
#include <utility>

#include <pqxx/pqxx>
#include <sqlite3.h>

namespace cerebelum::eventstore::bench {

namespace {

using clock_type = std::chrono::steady_clock;

double per_second(std::size_t n, clock_type::time_point start) {
  std::chrono::duration<double> secs = clock_type::now() - start;
  return static_cast<double>(n) / secs.count();
}

std::string hex(const std::string& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "\\x";
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

void sqlite_check(int rc, sqlite3* db) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    throw std::runtime_error(sqlite3_errmsg(db));
}

/// The key of row `i` of a floor run.
std::pair<std::string, std::int64_t> floor_key(const floor_shape& shape,
                                               std::size_t i) {
  if (shape.executions == 0) return {shape.tag + "-" + std::to_string(i), 0};
  return {shape.tag + "-" + std::to_string(i % shape.executions),
          static_cast<std::int64_t>(i / shape.executions)};
}

/// The raw index write of one floor batch: one INSERT (first batch) or one
/// UPDATE of all its executions from array parameters.
void write_index(pqxx::work& tx, const std::string& ids,
                 const std::string& next_seqs, bool create) {
  if (create)
    tx.exec_params0("INSERT INTO executions SELECT id, 'bench', 0, "
                    "'running', 'step', n, NULL, 1, n "
                    "FROM unnest($1::text[], $2::bigint[]) AS v(id, n)",
                    ids, next_seqs);
  else
    tx.exec_params0("UPDATE executions e SET next_seq = v.n, "
                    "updated_at = v.n "
                    "FROM unnest($1::text[], $2::bigint[]) AS v(id, n) "
                    "WHERE e.execution_id = v.id",
                    ids, next_seqs);
}

} // namespace

std::string bench_payload(std::size_t i) {
  auto p = "step_completed:" + std::to_string(i) + ":";
  p.resize(200, static_cast<char>('a' + i % 26));
  return p;
}

double sqlite_floor(const std::string& data_dir, const floor_shape& shape) {
  sqlite3* db = nullptr;
  auto path = data_dir + "/cerebelum-events.db";
  sqlite_check(sqlite3_open(path.c_str(), &db), db);
  sqlite_check(sqlite3_exec(db,
                            "PRAGMA journal_mode = WAL; "
                            "PRAGMA synchronous = FULL",
                            nullptr, nullptr, nullptr),
               db);
  sqlite3_stmt* ins = nullptr;
  sqlite_check(sqlite3_prepare_v2(db,
                                  "INSERT INTO events VALUES (?, ?, 4, ?, 0)",
                                  -1, &ins, nullptr),
               db);
  sqlite3_stmt* index = nullptr;
  sqlite_check(
    sqlite3_prepare_v2(db,
                       "INSERT INTO executions VALUES (?, 'bench', 0, "
                       "'running', 'step', ?, NULL, 1, ?) "
                       "ON CONFLICT (execution_id) DO UPDATE SET "
                       "next_seq = excluded.next_seq, "
                       "updated_at = excluded.updated_at",
                       -1, &index, nullptr),
    db);
  auto start = clock_type::now();
  auto end = start + std::chrono::duration<double>{shape.seconds};
  std::size_t i = 0;
  while (clock_type::now() < end) {
    sqlite_check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db);
    for (std::size_t j = 0; j < shape.batch; ++j, ++i) {
      auto [id, seq] = floor_key(shape, i);
      auto payload = bench_payload(i);
      sqlite3_bind_text(ins, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins, 2, seq);
      sqlite3_bind_blob(ins, 3, payload.data(),
                        static_cast<int>(payload.size()), SQLITE_TRANSIENT);
      sqlite_check(sqlite3_step(ins), db);
      sqlite3_reset(ins);
      if (shape.with_index) {
        sqlite3_bind_text(index, 1, id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(index, 2, seq + 1);
        sqlite3_bind_int64(index, 3, seq + 1);
        sqlite_check(sqlite3_step(index), db);
        sqlite3_reset(index);
      }
    }
    sqlite_check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db);
  }
  auto rate = per_second(i, start);
  sqlite3_finalize(index);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return rate;
}

double pg_floor(const std::string& conninfo, const std::string& schema,
                const floor_shape& shape) {
  pqxx::connection conn{conninfo};
  {
    pqxx::nontransaction tx{conn};
    tx.exec0("SET synchronous_commit = on");
    tx.exec0("SET search_path TO " + tx.quote_name(schema));
  }
  auto start = clock_type::now();
  auto end = start + std::chrono::duration<double>{shape.seconds};
  std::size_t i = 0;
  while (clock_type::now() < end) {
    pqxx::work tx{conn};
    pqxx::stream_to copy{tx, "events"};
    std::string ids = "{";
    std::string seqs = "{";
    std::int64_t first_seq = 0;
    for (std::size_t j = 0; j < shape.batch; ++j, ++i) {
      auto [id, seq] = floor_key(shape, i);
      copy << std::make_tuple(id, seq, 4, hex(bench_payload(i)),
                              std::int64_t{0});
      ids += (j > 0 ? ",\"" : "\"") + id + '"';
      seqs += (j > 0 ? "," : "") + std::to_string(seq + 1);
      first_seq = j == 0 ? seq : first_seq;
    }
    copy.complete();
    if (shape.with_index)
      write_index(tx, ids + '}', seqs + '}', first_seq == 0);
    tx.commit();
  }
  return per_second(i, start);
}

} // namespace cerebelum::eventstore::bench
