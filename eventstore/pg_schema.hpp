#pragma once

// Internal: the PostgreSQL schema, version 6 (version 1 without
// `definitions`, versions 1 to 3 without `tokens`, version 4 without
// `tokens.cert_subject` and `workflow_owners`, version 5 without the
// replacement columns of `workflow_owners`; version 3 changed no table; an
// older store is
// migrated in place at open). All tables
// live in the schema named by `pg_options::schema`; `pg_store::append_batch`
// writes them in one transaction per group (COPY for events, multi-row upserts
// for the index).
//
//   schema_version  component text PK ("eventstore") | version int |
//                   written_by text
//
//   events          execution_id text | seq bigint | type int |
//                   payload bytea | recorded_at bigint
//                   PK (execution_id, seq)
//                   PARTITION BY HASH (execution_id): events_p0 .. p{N-1}
//
//   executions      execution_id text PK | workflow text |
//                   workflow_version bigint | status text | phase text |
//                   next_seq bigint | wake_at bigint NULL |
//                   created_at bigint | updated_at bigint
//                   invariant: next_seq == count(events of execution_id)
//                   indexes: (created_at, execution_id),
//                            (status, created_at, execution_id),
//                            (workflow, created_at, execution_id)
//                   fillfactor 70: room for HOT updates, since most appends
//                   change only unindexed columns (next_seq, updated_at)
//
//   timers          execution_id | timer_id | fire_at bigint | purpose |
//                   generation bigint      PK (execution_id, timer_id)
//                   index: (fire_at, execution_id, timer_id)
//
//   tasks           task_id text PK | execution_id | queue | step |
//                   attempt int | attempt_token | idempotency_key |
//                   payload bytea | available_at bigint | lease_owner |
//                   lease_expires_at bigint NULL
//                   indexes: (queue, available_at), (execution_id, task_id)
//
//   dead_letters    id bigserial PK | task_id | execution_id | queue |
//                   attempt int | payload bytea | error text |
//                   failed_at bigint
//
//   definitions     name text | version bigint | document text |
//                   source text | stored_at bigint   PK (name, version)
//                   invariant: a row is written once (insert-if-absent) and
//                   never changed: `document` hashes to `version`
//                   (schema version 2)
//
//   tokens          id text PK | name text | role text | queues text |
//                   workflows text | hash text | created_at_ms bigint |
//                   expires_at_ms bigint | revoked_at_ms bigint |
//                   last_used_ms bigint | cert_subject text
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
//   workflow_owners name text PK | owner text | claimed_at_ms bigint |
//                   previous_owner text | replaced_by text |
//                   replaced_at_ms bigint
//                   owner: "token 'NAME'" (a worker identity) or "the
//                   node's workflow files"; the replacement columns hold
//                   the last change of hands ("", "", 0: none)
//                   invariant: a claim never changes an owner; only a
//                   replacement does, and it fills the replacement columns
//                   (schema version 5, replacement columns 6)
//
// Times are milliseconds since the Unix epoch.

namespace cerebelum::eventstore::detail {

inline constexpr const char* pg_schema_v1 = R"sql(
CREATE TABLE schema_version (
  component text PRIMARY KEY,
  version int NOT NULL,
  written_by text NOT NULL
);
CREATE TABLE events (
  execution_id text NOT NULL,
  seq bigint NOT NULL,
  type int NOT NULL,
  payload bytea NOT NULL,
  recorded_at bigint NOT NULL,
  PRIMARY KEY (execution_id, seq)
) PARTITION BY HASH (execution_id);
CREATE TABLE executions (
  execution_id text PRIMARY KEY,
  workflow text NOT NULL,
  workflow_version bigint NOT NULL,
  status text NOT NULL,
  phase text NOT NULL,
  next_seq bigint NOT NULL,
  wake_at bigint,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX executions_by_created ON executions (created_at, execution_id);
CREATE INDEX executions_by_status
  ON executions (status, created_at, execution_id);
CREATE INDEX executions_by_workflow
  ON executions (workflow, created_at, execution_id);
CREATE TABLE timers (
  execution_id text NOT NULL,
  timer_id text NOT NULL,
  fire_at bigint NOT NULL,
  purpose text NOT NULL,
  generation bigint NOT NULL,
  PRIMARY KEY (execution_id, timer_id)
);
CREATE INDEX timers_by_fire_at ON timers (fire_at, execution_id, timer_id);
CREATE TABLE tasks (
  task_id text PRIMARY KEY,
  execution_id text NOT NULL,
  queue text NOT NULL,
  step text NOT NULL,
  attempt int NOT NULL,
  attempt_token text NOT NULL,
  idempotency_key text NOT NULL,
  payload bytea NOT NULL,
  available_at bigint NOT NULL,
  lease_owner text NOT NULL,
  lease_expires_at bigint
);
CREATE INDEX tasks_by_queue ON tasks (queue, available_at);
CREATE INDEX tasks_by_execution ON tasks (execution_id, task_id);
CREATE TABLE dead_letters (
  id bigserial PRIMARY KEY,
  task_id text NOT NULL,
  execution_id text NOT NULL,
  queue text NOT NULL,
  attempt int NOT NULL,
  payload bytea NOT NULL,
  error text NOT NULL,
  failed_at bigint NOT NULL
);
)sql";

/// What schema version 2 adds to version 1.
inline constexpr const char* pg_schema_v2 = R"sql(
CREATE TABLE definitions (
  name text NOT NULL,
  version bigint NOT NULL,
  document text NOT NULL,
  source text NOT NULL,
  stored_at bigint NOT NULL,
  PRIMARY KEY (name, version)
);
)sql";

/// What schema version 4 adds to version 3.
inline constexpr const char* pg_schema_v4 = R"sql(
CREATE TABLE tokens (
  id text PRIMARY KEY,
  name text NOT NULL,
  role text NOT NULL,
  queues text NOT NULL,
  workflows text NOT NULL,
  hash text NOT NULL,
  created_at_ms bigint NOT NULL,
  expires_at_ms bigint NOT NULL,
  revoked_at_ms bigint NOT NULL,
  last_used_ms bigint NOT NULL
);
)sql";

/// What schema version 5 adds to version 4: principals bound to a client
/// certificate (cert_subject, empty for tokens) and workflow owners.
inline constexpr const char* pg_schema_v5 = R"sql(
ALTER TABLE tokens ADD COLUMN cert_subject text NOT NULL DEFAULT '';
CREATE TABLE workflow_owners (
  name text PRIMARY KEY,
  owner text NOT NULL,
  claimed_at_ms bigint NOT NULL
);
)sql";

/// What schema version 6 adds to version 5: the last replacement of a
/// workflow name's owner.
inline constexpr const char* pg_schema_v6 = R"sql(
ALTER TABLE workflow_owners
  ADD COLUMN previous_owner text NOT NULL DEFAULT '',
  ADD COLUMN replaced_by text NOT NULL DEFAULT '',
  ADD COLUMN replaced_at_ms bigint NOT NULL DEFAULT 0;
)sql";

} // namespace cerebelum::eventstore::detail
