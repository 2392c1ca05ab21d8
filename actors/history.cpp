#include "actors/history.hpp"

#include <set>

#include "actors/errc.hpp"
#include "eventstore/codec.hpp"

namespace cerebelum::actors {

namespace {

caf::error store_error(const eventstore::error& err, const std::string& id) {
  // Any error that a later read may not meet (connection lost, server
  // restarting, a serialization failure): the reader waits and retries.
  if (err.code == eventstore::errc::unavailable
      || err.code == eventstore::errc::closed || err.retryable)
    return make_error(errc::unavailable, "store unavailable reading " + id
                                           + ": " + eventstore::to_string(err));
  if (is_store_damage(err))
    return make_error(errc::store_damaged, "the history of " + id
                                             + " cannot be read back: "
                                             + eventstore::to_string(err));
  return make_error(errc::internal,
                    "cannot read " + id + ": " + eventstore::to_string(err));
}

} // namespace

namespace {

/// Folds the history of `id` on `def` from the start; `chain` says which
/// versions it ran on (see execution_state::expect_versions).
caf::expected<loaded_execution>
fold_on(engine_context& ctx, const std::string& id,
        engine_context::definition_ptr def, std::vector<std::uint64_t> chain) {
  loaded_execution result;
  result.def = std::move(def);
  result.state = std::make_unique<workflow::execution_state>(*result.def, id);
  if (chain.size() > 1) result.state->expect_versions(std::move(chain));
  std::string fault;
  auto n = eventstore::read_history(
    ctx.store(), id, 0, [&](const events::Event& ev) {
      auto applied = result.state->apply(ev);
      if (!applied)
        fault = "cannot replay " + id + ": " + applied.error().to_string();
      return static_cast<bool>(applied);
    });
  if (!n) return store_error(n.err(), id);
  if (!fault.empty()) return make_error(errc::internal, std::move(fault));
  return result;
}

caf::expected<loaded_execution> load_once(engine_context& ctx,
                                          const std::string& id,
                                          missing_workflow* missing) {
  loaded_execution result;
  std::string fault;
  std::string workflow;
  // The version it started on, then each one it was migrated to: a migrated
  // history is folded again, from the start, on the last.
  std::vector<std::uint64_t> chain;
  bool folding = false;
  auto n = eventstore::read_history(
    ctx.store(), id, 0, [&](const events::Event& ev) {
      if (chain.empty()) {
        if (!ev.has_execution_started()) {
          fault = "history of " + id + " does not begin with execution_started";
          return false;
        }
        auto& started = ev.execution_started();
        workflow = started.workflow();
        chain.push_back(started.workflow_version());
        result.def = ctx.find(workflow, chain.back());
        folding = result.def != nullptr;
        if (folding)
          result.state
            = std::make_unique<workflow::execution_state>(*result.def, id);
      } else if (ev.has_execution_migrated()) {
        const auto& m = ev.execution_migrated();
        if (m.from_version() != chain.back()) {
          fault = "history of " + id + ": execution_migrated at seq "
                  + std::to_string(ev.seq()) + " leaves version "
                  + std::to_string(m.from_version()) + ", but it runs version "
                  + std::to_string(chain.back());
          return false;
        }
        chain.push_back(m.to_version());
        folding = false;
        result.state.reset();
        return true;
      }
      if (!folding) return true;
      auto applied = result.state->apply(ev);
      if (!applied) {
        fault = "cannot replay " + id + ": " + applied.error().to_string();
        return false;
      }
      return true;
    });
  if (!n) return store_error(n.err(), id);
  if (!fault.empty()) return make_error(errc::internal, std::move(fault));
  if (chain.empty())
    return make_error(errc::not_found, "no execution with id " + id);
  if (chain.size() > 1) result.def = ctx.find(workflow, chain.back());
  if (!result.def) {
    if (missing) *missing = {workflow, chain.back()};
    return make_error(errc::unknown_workflow,
                      "execution " + id + " runs workflow " + workflow
                        + " version " + std::to_string(chain.back())
                        + ", which neither this node (--workflows, a "
                          "worker's registration) nor the store has");
  }
  if (chain.size() > 1)
    return fold_on(ctx, id, std::move(result.def), std::move(chain));
  return result;
}

} // namespace

caf::expected<loaded_execution> load_execution(engine_context& ctx,
                                               const std::string& id,
                                               missing_workflow* missing) {
  missing_workflow which;
  auto loaded = load_once(ctx, id, &which);
  if (missing) *missing = which;
  if (loaded || api_error_code(loaded.error()) != errc::unknown_workflow)
    return loaded;
  // Not loaded on this node: the version it started on is in the store
  // (written with its first append), whatever the files say now.
  auto def = ctx.find_or_load(which.name, which.version);
  if (!def) return store_error(def.err(), id);
  if (!*def) return loaded;
  return load_once(ctx, id, missing);
}

rows_before capture_rows(const workflow::execution_state& state) {
  return {state.timers(), state.outstanding()};
}

eventstore::index_update make_index(const workflow::execution_state& state,
                                    std::int64_t now_ms) {
  eventstore::index_update idx;
  idx.status = to_store_status(state.status());
  idx.workflow = state.def().name;
  idx.workflow_version = state.def().version_hash;
  idx.phase = state.phase();
  if (!state.terminal()) idx.wake_at_ms = state.next_wake_ms();
  idx.created_at_ms = state.started_at_ms();
  idx.updated_at_ms = now_ms;
  return idx;
}

eventstore::append_request
make_append(const workflow::execution_state& state,
            std::int64_t expected_next_seq,
            const std::vector<events::Event>& evs, const rows_before& before,
            const std::vector<workflow::command>& commands,
            std::int64_t now_ms) {
  eventstore::append_request req;
  req.execution_id = state.execution_id();
  req.expected_next_seq = expected_next_seq;
  for (auto& ev : evs) {
    auto enc = eventstore::encode(ev);
    if (!enc) continue; // the decider never emits an event without payload
    enc->recorded_at_ms = ev.recorded_at_ms();
    req.events.push_back(std::move(*enc));
  }
  req.index = make_index(state, now_ms);
  // Timer rows follow the state: armed ones are upserted, gone ones deleted.
  std::set<std::string> after_ids;
  for (auto& t : state.timers()) {
    after_ids.insert(t.id);
    bool known = false;
    for (auto& b : before.timers)
      known = known || b.id == t.id;
    if (!known)
      req.timer_upserts.push_back({{}, t.id, t.fire_at_ms, t.purpose, 0});
  }
  for (auto& b : before.timers)
    if (after_ids.count(b.id) == 0) req.timer_deletes.push_back(b.id);
  // Task rows: one per task attempt, written with its step_scheduled event.
  std::set<std::string> open_tasks;
  for (auto& a : state.outstanding())
    if (a.kind == workflow::step_kind::task) open_tasks.insert(a.token);
  for (auto& b : before.outstanding)
    if (b.kind == workflow::step_kind::task && open_tasks.count(b.token) == 0)
      req.task_deletes.push_back(b.token);
  for (auto& cmd : commands) {
    auto* run = std::get_if<workflow::run_step_command>(&cmd);
    if (!run || run->kind != workflow::step_kind::task) continue;
    eventstore::task_row row;
    row.task_id = run->token;
    row.queue = run->task_queue;
    row.step = run->step;
    row.attempt = static_cast<std::int32_t>(run->attempt);
    row.attempt_token = run->token;
    row.idempotency_key = run->idempotency_key;
    // What a worker needs besides the row's columns (see task_router.cpp).
    row.payload = workflow::json_text(workflow::json{
      {"target", run->target},
      {"input", run->input},
      {"workflow", state.def().name},
      {"map_index", run->map_index},
      {"start_to_close_timeout_ms", run->start_to_close_timeout_ms},
      {"heartbeat_timeout_ms", run->heartbeat_timeout_ms},
      {"resume",
       run->resume.is_object() ? run->resume : workflow::json::object()}});
    row.available_at_ms = now_ms;
    req.task_upserts.push_back(std::move(row));
  }
  // A task step's unhandled failure that failed the execution in this append
  // becomes a dead letter, in the same commit.
  bool failed_now = false;
  for (auto& ev : evs)
    failed_now = failed_now || ev.has_execution_failed();
  if (failed_now) {
    if (auto dl = state.dead_letter()) {
      eventstore::dead_letter_row row;
      row.task_id = dl->attempt_token;
      row.queue = dl->task_queue;
      row.attempt = static_cast<std::int32_t>(dl->attempt);
      row.payload
        = workflow::json_text(workflow::json{{"workflow", state.def().name},
                                             {"step", dl->step},
                                             {"map_index", dl->map_index},
                                             {"target", dl->target},
                                             {"input", dl->input}});
      row.error = workflow::json_text(dl->error.to_json());
      row.failed_at_ms = now_ms;
      req.dead_letter_inserts.push_back(std::move(row));
    }
  }
  return req;
}

} // namespace cerebelum::actors
