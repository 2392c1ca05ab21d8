#pragma once

// Internal: the SQLite schema, version 6 (version 1 without `definitions`,
// versions 1 to 3 without `tokens`, version 4 without
// `tokens.cert_subject` and `workflow_owners`, version 5 without the
// replacement columns of `workflow_owners`; version 3 changed no table). An
// older store is
// migrated in place at open by adding the tables and columns it lacks.
//
// One database file `<data_dir>/cerebelum-events.db` in WAL mode. All tables
// are written by `sqlite_store::append_batch` in one transaction per group.
//
//   schema_version  component TEXT PK ("eventstore") | version INT | written_by
//
//   events          execution_id TEXT | seq INT | type INT | payload BLOB |
//                   recorded_at INT                     PK (execution_id, seq)
//                   WITHOUT ROWID: rows of one execution are contiguous in
//                   the b-tree, so `read` is one range scan.
//
//   executions      execution_id TEXT PK | workflow | workflow_version INT |
//                   status TEXT | phase TEXT | next_seq INT | wake_at INT? |
//                   created_at INT | updated_at INT
//                   invariant: next_seq == count(events of execution_id)
//                   indexes: (created_at, execution_id),
//                            (status, created_at, execution_id),
//                            (workflow, created_at, execution_id)
//
//   timers          execution_id | timer_id | fire_at INT | purpose |
//                   generation INT         PK (execution_id, timer_id)
//                   index: (fire_at, execution_id, timer_id)
//
//   tasks           task_id TEXT PK | execution_id | queue | step | attempt |
//                   attempt_token | idempotency_key | payload BLOB |
//                   available_at INT | lease_owner | lease_expires_at INT?
//                   indexes: (queue, available_at), (execution_id, task_id)
//
//   dead_letters    id INT PK | task_id | execution_id | queue | attempt |
//                   payload BLOB | error TEXT | failed_at INT
//
//   definitions     name TEXT | version INT | document TEXT | source TEXT |
//                   stored_at INT          PK (name, version)
//                   invariant: a row is written once (insert-if-absent) and
//                   never changed: `document` hashes to `version`
//                   (schema version 2)
//
//   tokens          id TEXT PK | name | role | queues TEXT | workflows TEXT |
//                   hash TEXT | created_at_ms INT | expires_at_ms INT |
//                   revoked_at_ms INT | last_used_ms INT | cert_subject
//                   queues and workflows: JSON arrays of strings ("[]":
//                   every one); the times are 0 for none (never expires,
//                   not revoked, never used)
//                   invariant: revoked_at_ms, once set, never changes;
//                   last_used_ms only grows; exactly one of hash and
//                   cert_subject is non-empty (a token or a principal
//                   bound to a client certificate)
//                   (schema version 4, cert_subject 5; a few rows: no
//                   index)
//
//   workflow_owners name TEXT PK | owner TEXT | claimed_at_ms INT |
//                   previous_owner TEXT | replaced_by TEXT |
//                   replaced_at_ms INT
//                   owner: "token 'NAME'" (a worker identity) or "the
//                   node's workflow files"; the replacement columns hold
//                   the last change of hands ("", "", 0: none)
//                   invariant: a claim never changes an owner; only a
//                   replacement does, and it fills the replacement columns
//                   (schema version 5, replacement columns 6)
//
// Times are milliseconds since the Unix epoch.

namespace cerebelum::eventstore::detail {

inline constexpr const char* sqlite_schema_v1 = R"sql(
CREATE TABLE schema_version (
  component TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  written_by TEXT NOT NULL
);
CREATE TABLE events (
  execution_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type INTEGER NOT NULL,
  payload BLOB NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
CREATE TABLE executions (
  execution_id TEXT PRIMARY KEY,
  workflow TEXT NOT NULL,
  workflow_version INTEGER NOT NULL,
  status TEXT NOT NULL,
  phase TEXT NOT NULL,
  next_seq INTEGER NOT NULL,
  wake_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX executions_by_created ON executions (created_at, execution_id);
CREATE INDEX executions_by_status
  ON executions (status, created_at, execution_id);
CREATE INDEX executions_by_workflow
  ON executions (workflow, created_at, execution_id);
CREATE TABLE timers (
  execution_id TEXT NOT NULL,
  timer_id TEXT NOT NULL,
  fire_at INTEGER NOT NULL,
  purpose TEXT NOT NULL,
  generation INTEGER NOT NULL,
  PRIMARY KEY (execution_id, timer_id)
) WITHOUT ROWID;
CREATE INDEX timers_by_fire_at ON timers (fire_at, execution_id, timer_id);
CREATE TABLE tasks (
  task_id TEXT PRIMARY KEY,
  execution_id TEXT NOT NULL,
  queue TEXT NOT NULL,
  step TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  attempt_token TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  payload BLOB NOT NULL,
  available_at INTEGER NOT NULL,
  lease_owner TEXT NOT NULL,
  lease_expires_at INTEGER
);
CREATE INDEX tasks_by_queue ON tasks (queue, available_at);
CREATE INDEX tasks_by_execution ON tasks (execution_id, task_id);
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  queue TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  payload BLOB NOT NULL,
  error TEXT NOT NULL,
  failed_at INTEGER NOT NULL
);
)sql";

/// What schema version 2 adds to version 1.
inline constexpr const char* sqlite_schema_v2 = R"sql(
CREATE TABLE definitions (
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  document TEXT NOT NULL,
  source TEXT NOT NULL,
  stored_at INTEGER NOT NULL,
  PRIMARY KEY (name, version)
) WITHOUT ROWID;
)sql";

/// What schema version 4 adds to version 3.
inline constexpr const char* sqlite_schema_v4 = R"sql(
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  queues TEXT NOT NULL,
  workflows TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER NOT NULL,
  last_used_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

/// What schema version 5 adds to version 4: principals bound to a client
/// certificate (cert_subject, empty for tokens) and workflow owners.
inline constexpr const char* sqlite_schema_v5 = R"sql(
ALTER TABLE tokens ADD COLUMN cert_subject TEXT NOT NULL DEFAULT '';
CREATE TABLE workflow_owners (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  claimed_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

/// What schema version 6 adds to version 5: the last replacement of a
/// workflow name's owner.
inline constexpr const char* sqlite_schema_v6 = R"sql(
ALTER TABLE workflow_owners ADD COLUMN previous_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_owners ADD COLUMN replaced_by TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_owners ADD COLUMN replaced_at_ms INTEGER NOT NULL DEFAULT 0;
)sql";

} // namespace cerebelum::eventstore::detail
