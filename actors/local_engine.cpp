#include "actors/local_engine.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <future>
#include <limits>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>
#include <variant>

#include "actors/backoff.hpp"
#include "actors/dead_letters.hpp"
#include "actors/errc.hpp"
#include "actors/history.hpp"
#include "actors/messages.hpp"
#include "actors/operator_commands.hpp"
#include "actors/payload_limit.hpp"
#include "actors/upgrades.hpp"
#include "eventstore/codec.hpp"
#include "workflow/input_schema.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::actors {

/// One wait the wait hub holds (`engine_api::wait` and `wait_async`).
struct wait_request {
  std::string id;
  /// When it gives up, on the engine's clock (ms); none: the caller's own
  /// deadline (a synchronous wait) ends it with `unsub_atom`.
  std::optional<std::int64_t> deadline_ms;
  /// For the deadline's message.
  std::chrono::milliseconds timeout{0};
  engine_api::wait_callback done;
};

using wait_request_ptr = std::shared_ptr<wait_request>;

/// A start the wait hub carries to the registry (`engine_api::start`,
/// `start_async`): the execution's actor answers after its commit whether
/// it created the execution.
struct start_carry {
  std::string id;
  started_execution_ptr first;
  /// Whether the hub gives up after `answer_timeout` (`start_async`); a
  /// synchronous start has its caller's deadline.
  bool timed = false;
  std::function<void(caf::expected<bool>)> done;
};

using start_carry_ptr = std::shared_ptr<start_carry>;

} // namespace cerebelum::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::wait_request_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cerebelum::actors::start_carry_ptr)

namespace cerebelum::actors {

namespace {

caf::error from_store(const eventstore::error& err, const std::string& what) {
  // An event over the store's payload limit is the caller's data (an input
  // just under the input limit plus the event's envelope): a bad request.
  auto code = err.code == eventstore::errc::unavailable
                  || err.code == eventstore::errc::closed
                  || err.code == eventstore::errc::overloaded
                ? errc::unavailable
              : err.code == eventstore::errc::payload_too_large
                ? errc::payload_too_large
              : is_store_damage(err) ? errc::store_damaged
                                     : errc::internal;
  if (is_outage(err))
    return make_error(code, what + ": the store is unavailable ("
                              + eventstore::to_string(err) + "); retry later");
  return make_error(code, what + ": " + eventstore::to_string(err));
}

/// "ex-" + 12 hex digits of the creation time (ms since the epoch) + 8
/// random hex digits. Time-ordered ids keep the rows of executions started
/// together next to each other in the stores' b-trees (events and index
/// are keyed by id), so a group commit dirties a few pages at the right
/// edge instead of one random page per execution.
std::string random_id(std::int64_t now_ms) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = "ex-";
  auto t = static_cast<std::uint64_t>(now_ms);
  for (int shift = 44; shift >= 0; shift -= 4)
    id += hex[(t >> shift) & 0xf];
  auto r = rng();
  for (int i = 0; i < 8; ++i, r >>= 4)
    id += hex[r & 0xf];
  return id;
}

caf::error check_text(std::string_view field, const std::string& value,
                      std::size_t max_bytes, workflow::text_rule rule) {
  if (auto bad = workflow::check_text(field, value, max_bytes, rule))
    return make_error(errc::invalid_argument, std::move(*bad));
  return caf::none;
}

caf::error check_id(const std::string& id) {
  return check_text("execution id", id, workflow::max_name_bytes,
                    workflow::text_rule::name);
}

/// Checks the operator's name recorded with a command.
caf::error check_by(const std::string& by) {
  return check_text("by", by, workflow::max_name_bytes,
                    workflow::text_rule::label);
}

/// Checks the principal and the note recorded with a command.
caf::error check_by(const operator_id& who) {
  if (auto err = check_by(who.by)) return err;
  return check_by(who.note);
}

caf::error check_workflow_name(const std::string& name) {
  return check_text("workflow", name, workflow::max_name_bytes,
                    workflow::text_rule::name);
}

caf::error check_json_value(std::string_view field, const json& value) {
  // Depth only: the size of a start input is checked on its text.
  auto size = workflow::limits::measure(
    value, std::numeric_limits<std::size_t>::max(), workflow::max_json_depth);
  if (size.depth > workflow::max_json_depth)
    return make_error(errc::invalid_argument,
                      std::string{field} + ": JSON nested deeper than "
                        + std::to_string(workflow::max_json_depth) + " levels");
  return caf::none;
}

/// How long a command or a start waits for the execution's actor to
/// answer (after its commit).
constexpr auto answer_timeout = std::chrono::seconds{60};

/// An error of the request to the engine as operators see it: the actor's
/// own errors pass through.
caf::error from_request(const caf::error& err, const std::string& id) {
  if (err.category() == error_category) return err;
  if (err == caf::sec::request_timeout)
    return make_error(errc::unavailable,
                      "execution " + id + " did not answer within "
                        + std::to_string(answer_timeout.count())
                        + " s; the command may still be recorded");
  return make_error(errc::unavailable,
                    "execution " + id + " could not take the command ("
                      + caf::to_string(err) + "); try again");
}

/// A dead-letter error as operators see it.
caf::error from_task(const task_error& err) {
  switch (err.code) {
    case task_errc::invalid_argument:
      return make_error(errc::invalid_argument, err.message);
    case task_errc::not_found: return make_error(errc::not_found, err.message);
    case task_errc::not_retryable:
      return make_error(errc::not_retryable, err.message);
    default: return make_error(errc::unavailable, err.message);
  }
}

/// "no execution with id X", X made safe to echo.
caf::error no_execution(const std::string& id) {
  return make_error(errc::not_found,
                    "no execution with id " + workflow::printable(id));
}

/// A start checked and decided, for the execution's actor to append: what
/// `prepare_start` returns unless the answer is known without it.
struct pending_start {
  std::string id;
  started_execution_ptr first;
  execution_view view;
  /// The definition is stored with this start.
  bool stores_definition = false;
};

class local_engine : public engine_api,
                     public std::enable_shared_from_this<local_engine> {
 public:
  local_engine(caf::actor_system& sys, context_ptr ctx)
    : sys_(&sys), ctx_(std::move(ctx)) {
    // nop
  }

  caf::expected<start_response> start(const start_request& req) override;
  void start_async(const start_request& req, start_callback done) override;
  /// Hands the start of `id` to the wait hub, which calls `done` with the
  /// actor's answer (or the error of the request).
  caf::error carry_start(const std::string& id, started_execution_ptr first,
                         bool timed,
                         std::function<void(caf::expected<bool>)> done);
  /// Checks `req` and decides its first step: the answer when it is known
  /// without an append (the id exists), else the start to append.
  caf::expected<std::variant<start_response, pending_start>>
  prepare_start(const start_request& req);
  /// The answer for a known id.
  caf::expected<start_response> existing(const std::string& id);
  /// The answer after the execution's actor took the start (`created`
  /// false: the id existed meanwhile).
  caf::expected<start_response> started(pending_start& p, bool created);

  /// Refuses `value` (`field`) over `--max-payload-bytes` of compact JSON,
  /// before anything is written.
  caf::error check_payload(std::string_view field, const json& value) const {
    auto text = workflow::json_text(value);
    if (auto over = payload_over(field, text.size(),
                                 ctx_->options().max_payload_bytes))
      return make_error(errc::payload_too_large, std::move(*over));
    return caf::none;
  }

  caf::expected<execution_view> describe(const std::string& id) override {
    if (auto err = check_id(id)) return err;
    auto row = ctx_->store().get_execution(id);
    if (!row) {
      ctx_->health().failed(row.err());
      return from_store(row.err(), "cannot read " + id);
    }
    if (!row->has_value()) return no_execution(id);
    auto loaded = load_execution(*ctx_, id);
    if (!loaded) {
      auto view = make_view(**row);
      if (!eventstore::is_terminal(view.status)
          && api_error_code(loaded.error()) != errc::unavailable)
        view.stuck_reason = api_error_message(loaded.error());
      return view;
    }
    auto view = make_view(*loaded->state, **row);
    view.stuck_reason = overdue(**row);
    return view;
  }

  caf::expected<list_response> list(const list_request& req) override {
    if (req.workflow)
      if (auto err = check_text("workflow", *req.workflow,
                                workflow::max_name_bytes,
                                workflow::text_rule::name))
        return err;
    eventstore::list_filter filter{req.status, req.workflow,
                                   req.created_from_ms, req.created_to_ms};
    auto size = req.page_size == 0 ? 100 : req.page_size;
    if (size > 1000)
      return make_error(errc::invalid_argument, "page_size above 1000");
    list_response result;
    std::string token = req.page_token;
    std::map<std::pair<std::string, std::uint64_t>, std::string> missing;
    // With `stuck`, pages are read until `size` stuck ones are found (or the
    // index ends): the filter is not an index column. Each page asks for no
    // more than are still missing, so no row is skipped between pages.
    do {
      auto want = size - result.executions.size();
      auto page = ctx_->store().list_executions(filter, want, token);
      if (!page) {
        if (page.err().code == eventstore::errc::invalid_argument)
          return make_error(errc::invalid_argument,
                            "bad page token: " + page.err().message);
        return from_store(page.err(), "cannot list executions");
      }
      token = page->next_page_token;
      for (auto& row : page->rows) {
        auto view = make_view(row);
        view.stuck_reason = stuck_reason(row, missing);
        if (req.stuck && view.stuck_reason.empty()) continue;
        result.executions.push_back(std::move(view));
      }
    } while (req.stuck && !token.empty() && result.executions.size() < size);
    result.next_page_token = token;
    return result;
  }

  caf::expected<std::vector<events::Event>>
  history(const std::string& id, std::int64_t from_seq) override {
    if (auto err = check_id(id)) return err;
    auto row = ctx_->store().get_execution(id);
    if (!row) {
      ctx_->health().failed(row.err());
      return from_store(row.err(), "cannot read " + id);
    }
    if (!row->has_value()) return no_execution(id);
    auto events = eventstore::history_of(ctx_->store(), id,
                                         std::max<std::int64_t>(0, from_seq));
    if (!events)
      return from_store(events.err(), "cannot read the history of " + id);
    return std::move(*events);
  }

  caf::expected<execution_view> approve(const std::string& id,
                                        const operator_id& who,
                                        const json& data) override {
    if (who.by.empty())
      return make_error(errc::invalid_argument, "approve needs the approver");
    if (auto err = check_by(who)) return err;
    if (auto err = check_json_value("data", data)) return err;
    if (auto err = check_payload("approval data", data)) return err;
    return command(id, make_approval(who, data));
  }

  caf::expected<execution_view> reject(const std::string& id,
                                       const operator_id& who,
                                       const std::string& reason) override {
    if (who.by.empty())
      return make_error(errc::invalid_argument, "reject needs the rejecter");
    if (auto err = check_by(who)) return err;
    if (auto err = check_text("reason", reason, workflow::max_free_text_bytes,
                              workflow::text_rule::free))
      return err;
    return command(id, make_rejection(who, reason));
  }

  caf::expected<execution_view> cancel(const std::string& id,
                                       const operator_id& who,
                                       const std::string& reason) override {
    if (auto err = check_by(who)) return err;
    if (auto err = check_text("reason", reason, workflow::max_free_text_bytes,
                              workflow::text_rule::free))
      return err;
    return command(id, make_cancellation(who, reason));
  }

  caf::expected<execution_view>
  wait(const std::string& id, std::chrono::milliseconds timeout) override;

  void wait_async(const std::string& id, std::chrono::milliseconds timeout,
                  wait_callback done) override;

  follow_stop follow(const std::string& id, std::int64_t from_seq,
                     follow_sink sink) override;

  caf::expected<dead_letter_list>
  dead_letters(const std::string& queue, std::size_t page_size,
               const std::string& page_token) override {
    if (page_size > 1000)
      return make_error(errc::invalid_argument, "page_size is "
                                                  + std::to_string(page_size)
                                                  + ", at most 1000");
    if (!queue.empty())
      if (auto err = check_text("queue", queue, workflow::max_name_bytes,
                                workflow::text_rule::name))
        return err;
    auto res = list_dead_letters(*ctx_, queue, page_size, page_token);
    if (!res) return from_task(*res.error);
    return std::move(*res.value);
  }

  caf::expected<execution_view>
  retry_dead_letter(std::int64_t id, const operator_id& who) override {
    auto res = actors::retry_dead_letter(*ctx_, id, who);
    if (!res) return from_task(*res.error);
    return describe(*res.value);
  }

  std::vector<workflow_view> workflows() override;

  caf::expected<upgrade_report>
  check_upgrade(const std::string& definition_text,
                const std::string& file) override {
    if (auto err = check_text("file", file, workflow::max_name_bytes,
                              workflow::text_rule::label))
      return err;
    return check_open_executions(*ctx_, definition_text, file);
  }

  caf::expected<upgrade_report> migrate(const std::string& definition_text,
                                        const std::string& file,
                                        const operator_id& who) override {
    if (who.by.empty())
      return make_error(errc::invalid_argument,
                        "by: a migration needs the operator's name");
    if (auto err = check_by(who)) return err;
    if (auto err = check_text("file", file, workflow::max_name_bytes,
                              workflow::text_rule::label))
      return err;
    auto def = load_candidate(definition_text, file);
    if (!def) return std::move(def.error());
    auto to = std::make_shared<const workflow::definition>(std::move(*def));
    auto report = check_open_executions(*ctx_, *to);
    if (!report) return report;
    for (auto& view : report->executions) {
      if (!view.compatible) continue;
      if (view.version == to->version_hash) {
        view.reason = "it runs this version already";
        continue;
      }
      // Its actor checks the history again (it may have moved on since)
      // and records the migration.
      auto moved = command(view.execution_id, make_migration(who, to));
      if (moved) {
        view.migrated = true;
        continue;
      }
      if (api_error_code(moved.error()) == errc::incompatible) {
        auto again = check_execution(*ctx_, *to, view.execution_id,
                                     view.version);
        if (again && !again->compatible) {
          view = std::move(*again);
          continue;
        }
      }
      view.reason = "not migrated: " + api_error_message(moved.error());
    }
    return report;
  }

  node_metrics& metrics() override {
    return ctx_->metrics();
  }

  std::string metrics_text() override {
    return ctx_->metrics_text();
  }

  caf::expected<workflow_owner_view>
  workflow_owner(const std::string& name) override {
    if (auto err = check_workflow_name(name)) return err;
    auto rec = ctx_->owner_of(name);
    if (!rec) return std::move(rec.error());
    return workflow_owner_view{name, std::move(rec->owner),
                               std::move(rec->stored)};
  }

  caf::expected<workflow_owner_view>
  transfer_workflow(const std::string& name, const std::string& to,
                    const std::string& by) override {
    if (auto err = check_workflow_name(name)) return err;
    if (to.empty())
      return make_error(errc::invalid_argument,
                        "to: a transfer needs the new owner");
    if (by.empty())
      return make_error(errc::invalid_argument,
                        "by: a transfer needs the operator's name");
    if (auto err = check_by(by)) return err;
    auto rec = ctx_->transfer_owner(name, to, by);
    if (!rec) return std::move(rec.error());
    return workflow_owner_view{name, std::move(rec->owner),
                               std::move(rec->stored)};
  }

  eventstore::event_store* token_store() override {
    return ctx_->has_store() ? &ctx_->store() : nullptr;
  }

  health_view health() override {
    auto& h = ctx_->health();
    if (!h.get().available) {
      // Nothing else may be calling the store right now (no waiters): the
      // probe is what notices that it is back.
      auto probe = ctx_->store().due_timers(0, 1);
      if (probe)
        h.succeeded();
      else
        h.failed(probe.err());
    }
    auto r = h.get();
    return {r.available, r.unavailable_since_ms, r.last_error, r.waiting,
            r.outages};
  }

 private:
  /// Why the execution of `row` cannot make progress, from what the node
  /// knows without reading its history; empty when nothing says so.
  /// `missing` caches the verdict per workflow version.
  std::string stuck_reason(
    const eventstore::execution_row& row,
    std::map<std::pair<std::string, std::uint64_t>, std::string>& missing) {
    if (eventstore::is_terminal(row.status)) return {};
    if (ctx_->is_damaged(row.execution_id))
      return "its history cannot be read back (the store is damaged)";
    auto key = std::make_pair(row.workflow, row.workflow_version);
    auto i = missing.find(key);
    if (i == missing.end()) {
      std::string why;
      if (!ctx_->has(row.workflow, row.workflow_version)) {
        auto def = ctx_->find_or_load(row.workflow, row.workflow_version);
        if (def && !*def)
          why = "its workflow " + row.workflow + " version "
                + std::to_string(row.workflow_version)
                + " is neither loaded nor stored";
        else if (!def && def.err().code != eventstore::errc::unavailable)
          why = "its workflow definition cannot be loaded: "
                + eventstore::to_string(def.err());
      }
      i = missing.emplace(key, std::move(why)).first;
    }
    if (!i->second.empty()) return i->second;
    return overdue(row);
  }

  /// A sleeping execution more than a minute past its wake time.
  std::string overdue(const eventstore::execution_row& row) const {
    constexpr std::int64_t grace_ms = 60'000;
    if (row.status != eventstore::execution_status::sleeping || !row.wake_at_ms)
      return {};
    auto late = ctx_->now_ms() - *row.wake_at_ms;
    if (late <= grace_ms) return {};
    return "sleeping " + std::to_string(late / 1000) + " s past its wake time";
  }

  /// Sends `cmd` to the execution's actor (through the engine, which
  /// spawns it when passive); it appends and answers after the commit.
  caf::expected<execution_view> command(const std::string& id,
                                        const operator_command_ptr& cmd) {
    if (auto err = check_id(id)) return err;
    auto row = ctx_->store().get_execution(id);
    if (!row) {
      ctx_->health().failed(row.err());
      return from_store(row.err(), "cannot read " + id);
    }
    if (!row->has_value()) return no_execution(id);
    caf::error failed;
    caf::scoped_actor self{*sys_};
    self
      ->request(ctx_->registry(), answer_timeout, command_atom::value, id, cmd)
      .receive([](ok_atom) {},
               [&](caf::error& err) {
                 failed = std::move(err);
               });
    if (failed && failed.category() != error_category) {
      // No actor took it: one that cannot load the history (parked, set
      // aside as damaged) quits at once. Its history says why.
      if (auto loaded = load_execution(*ctx_, id); !loaded)
        return std::move(loaded.error());
      return from_request(failed, id);
    }
    if (failed) return failed;
    return describe(id);
  }

  caf::actor_system* sys_;
  context_ptr ctx_;
};

caf::expected<std::variant<start_response, pending_start>>
local_engine::prepare_start(const start_request& req) {
  if (auto err = check_text("workflow", req.workflow, workflow::max_name_bytes,
                            workflow::text_rule::name))
    return err;
  if (auto err = check_id(req.execution_id)) return err;
  if (auto err = check_by({req.started_by, req.started_by_note})) return err;
  auto found = req.version == 0 ? ctx_->latest_or_stored(req.workflow)
                                : ctx_->find_or_load(req.workflow, req.version);
  if (!found)
    return from_store(found.err(), "cannot read the definitions of "
                                     + workflow::printable(req.workflow));
  auto def = std::move(*found);
  if (!def && req.version != 0)
    return make_error(errc::unknown_workflow,
                      "workflow '" + workflow::printable(req.workflow)
                        + "' has no version " + std::to_string(req.version)
                        + " (neither loaded nor stored)");
  if (!def)
    return make_error(errc::unknown_workflow,
                      "no workflow named '" + workflow::printable(req.workflow)
                        + "' is loaded");
  if (!req.input.is_object())
    return make_error(errc::invalid_argument, "input must be a JSON object");
  if (auto err = check_json_value("input", req.input)) return err;
  if (auto err = check_payload("input", req.input)) return err;
  if (auto ok = workflow::check_input(*def, req.input); !ok)
    return make_error(errc::invalid_argument,
                      "input does not match the input schema of " + req.workflow
                        + ": " + ok.error().message);
  auto id = req.execution_id.empty() ? random_id(ctx_->now_ms())
                                     : req.execution_id;
  if (auto err = check_id(id)) return err;
  if (!req.execution_id.empty()) {
    auto row = ctx_->store().get_execution(id);
    if (!row) {
      ctx_->health().failed(row.err());
      return from_store(row.err(), "cannot start " + id);
    }
    if (row->has_value()) {
      auto known = existing(id);
      if (!known) return std::move(known.error());
      return *known;
    }
  }
  // Admission control: while the store writer's queue backs up, a new
  // start would only wait in it (its steps' timeouts running); refuse it
  // before anything is written. A start retried with a known id was
  // answered above.
  auto fill = ctx_->writer().fill();
  if (fill > ctx_->options().admission_fill)
    return make_error(errc::overloaded,
                      "the node is over capacity: its store writer's queue is "
                        + std::to_string(static_cast<int>(fill * 100))
                        + "% full; retry in a second");
  auto limit = ctx_->options().admission_wait;
  if (limit.count() > 0) {
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      ctx_->writer().oldest_wait());
    if (waited > limit)
      return make_error(errc::overloaded,
                        "the node is over capacity: its store writer's oldest "
                        "append has waited "
                          + std::to_string(waited.count()) + " ms (limit "
                          + std::to_string(limit.count())
                          + " ms); retry in a second");
  }
  // The first decision is taken here and committed with execution_started
  // in ONE append: a start costs one commit, not two, and the first actor
  // takes this state over instead of reading back what was just written.
  auto now = ctx_->now_ms();
  auto state = std::make_unique<workflow::execution_state>(*def, id);
  std::vector<events::Event> evs{workflow::make_started_event(
    *def, req.input, now, req.started_by, req.started_by_note)};
  if (!state->apply(evs[0]))
    return make_error(errc::internal, "cannot fold execution_started");
  auto before = capture_rows(*state);
  auto dec = workflow::decide(*state, now, ctx_->options().reoffers);
  if (!dec)
    return make_error(errc::internal, "cannot decide the start of " + id + ": "
                                        + dec.error().to_string());
  for (auto& ev : dec->events)
    evs.push_back(std::move(ev));
  auto append = make_append(*state, 0, evs, before, dec->commands, now);
  // The definition is stored with the first execution that runs on it (in
  // the same transaction), so this execution resumes on it whatever the
  // files or the workers say later.
  if (auto row = ctx_->row_to_store(*def, now))
    append.definition_inserts.push_back(std::move(*row));
  auto stored = !append.definition_inserts.empty();
  auto updated_at = append.index.updated_at_ms;
  eventstore::execution_row row;
  row.execution_id = id;
  row.workflow = def->name;
  row.workflow_version = def->version_hash;
  row.created_at_ms = now;
  row.updated_at_ms = updated_at;
  row.next_seq = state->next_seq();
  auto view = make_view(*state, row);
  // The execution's actor (the only writer of its history) appends it and
  // answers after the commit; false: the id exists.
  auto first = std::make_shared<started_execution>(
    started_execution{std::move(def), std::move(state),
                      std::move(dec->commands), std::move(append)});
  return pending_start{std::move(id), std::move(first), std::move(view),
                       stored};
}

caf::expected<start_response> local_engine::existing(const std::string& id) {
  auto view = describe(id);
  if (!view) return std::move(view.error());
  return start_response{std::move(*view), false};
}

caf::expected<start_response> local_engine::started(pending_start& p,
                                                    bool created) {
  if (!created) return existing(p.id);
  if (p.stores_definition)
    ctx_->note_stored(p.view.workflow, p.view.workflow_version);
  return start_response{std::move(p.view), true};
}

caf::expected<start_response> local_engine::start(const start_request& req) {
  auto prepared = prepare_start(req);
  if (!prepared) return std::move(prepared.error());
  if (auto* known = std::get_if<start_response>(&*prepared))
    return std::move(*known);
  auto& p = std::get<pending_start>(*prepared);
  auto answer = std::make_shared<std::promise<caf::expected<bool>>>();
  auto got = answer->get_future();
  if (auto err = carry_start(p.id, p.first, false,
                             [answer](caf::expected<bool> r) {
                               answer->set_value(std::move(r));
                             }))
    return err;
  if (got.wait_for(answer_timeout) != std::future_status::ready)
    return from_request(caf::sec::request_timeout, p.id);
  auto created = got.get();
  if (!created) return std::move(created.error());
  return started(p, *created);
}

caf::error
local_engine::carry_start(const std::string& id, started_execution_ptr first,
                          bool timed,
                          std::function<void(caf::expected<bool>)> done) {
  auto hub = ctx_->wait_hub();
  if (!hub)
    return make_error(errc::unavailable,
                      "the node is stopping; start again once it is back");
  auto carry = std::make_shared<start_carry>();
  carry->id = id;
  carry->first = std::move(first);
  carry->timed = timed;
  carry->done = std::move(done);
  caf::anon_send(hub, start_atom::value, start_carry_ptr{std::move(carry)});
  return caf::none;
}

void local_engine::start_async(const start_request& req, start_callback done) {
  // The checks and the decision run on the caller's thread (a store read
  // only for a given id); the wait hub carries the start and calls back
  // after the commit, so no thread waits for it.
  auto prepared = prepare_start(req);
  if (!prepared) return done(std::move(prepared.error()));
  if (auto* known = std::get_if<start_response>(&*prepared))
    return done(std::move(*known));
  auto p = std::make_shared<pending_start>(
    std::move(std::get<pending_start>(*prepared)));
  auto me = shared_from_this();
  if (auto err = carry_start(p->id, p->first, true,
                             [me, p, done](caf::expected<bool> created) {
                               if (!created)
                                 done(std::move(created.error()));
                               else
                                 done(me->started(*p, *created));
                             }))
    done(std::move(err));
}

std::vector<workflow_view> local_engine::workflows() {
  using key = std::pair<std::string, std::uint64_t>;
  std::map<key, workflow_view> all;
  // Order within a name: stored ones by stored_at, then loaded ones not
  // stored yet.
  std::vector<key> order;
  auto entry = [&](const std::string& name, std::uint64_t version) -> auto& {
    auto [i, added] = all.try_emplace({name, version});
    if (added) {
      i->second.name = name;
      i->second.version = version;
      order.push_back(i->first);
    }
    return i->second;
  };
  if (auto rows = ctx_->store().list_definitions("", false)) {
    for (auto& r : *rows) {
      auto& v = entry(r.name, r.version);
      v.stored = true;
      v.stored_at_ms = r.stored_at_ms;
      v.source = r.source;
    }
  }
  for (auto& [name, version, source] : ctx_->definitions()) {
    auto& v = entry(name, version);
    v.loaded = ctx_->loaded(name, version);
    if (v.loaded || v.source.empty()) v.source = source;
  }
  std::map<std::string, std::uint64_t> latest;
  for (auto& [k, v] : all) {
    if (latest.count(k.first) > 0) continue;
    if (auto l = ctx_->latest_version(k.first)) {
      latest[k.first] = *l;
      continue;
    }
    // Nothing of the name loaded: a start takes the last one stored.
    std::int64_t best = -1;
    for (auto& [k2, v2] : all)
      if (k2.first == k.first && v2.stored && v2.stored_at_ms > best) {
        best = v2.stored_at_ms;
        latest[k.first] = k2.second;
      }
  }
  std::string token;
  do {
    auto page = ctx_->store().open_executions(1000, token);
    if (!page) break;
    for (auto& row : page->rows)
      if (auto i = all.find({row.workflow, row.workflow_version});
          i != all.end())
        ++i->second.open_executions;
    token = page->next_page_token;
  } while (!token.empty());
  std::stable_sort(order.begin(), order.end(), [](const key& a, const key& b) {
    return a.first < b.first;
  });
  std::vector<workflow_view> result;
  for (auto& k : order) {
    auto v = all[k];
    auto l = latest.find(k.first);
    v.latest = l != latest.end() && l->second == k.second;
    if (auto o = ctx_->owner(k.first))
      v.owner = o->empty() ? std::string{eventstore::files_owner} : *o;
    result.push_back(std::move(v));
  }
  return result;
}

/// The view of a finished execution, from the state its actor sent.
execution_view view_of_final(const std::string& id, const final_state& fin) {
  auto& st = *fin.state;
  eventstore::execution_row row;
  row.execution_id = id;
  row.workflow = st.def().name;
  row.workflow_version = st.def().version_hash;
  row.created_at_ms = st.started_at_ms();
  row.updated_at_ms = fin.updated_at_ms;
  return make_view(st, row);
}

/// A wait the node cannot hold because it is stopping.
caf::error wait_stopping() {
  return make_error(errc::unavailable,
                    "the node is stopping; wait again once it is back");
}

/// A wait whose deadline passed before execution `id` finished.
caf::error wait_deadline(const std::string& id,
                         std::chrono::milliseconds timeout) {
  return make_error(errc::deadline_exceeded,
                    "execution " + id + " did not finish within "
                      + std::to_string(timeout.count()) + " ms");
}

/// What a wait answers from the store: the view of a terminal execution
/// (or why it cannot be read), nothing while it is not terminal. One
/// indexed read, and the history only when it is terminal.
std::optional<caf::expected<execution_view>>
terminal_view(engine_context& ctx, const std::string& id) {
  auto row = ctx.store().get_execution(id);
  if (!row) return {from_store(row.err(), "cannot read " + id)};
  if (!row->has_value()) return {no_execution(id)};
  if (!eventstore::is_terminal((*row)->status)) return std::nullopt;
  auto loaded = load_execution(ctx, id);
  if (!loaded) return {make_view(**row)};
  return {make_view(*loaded->state, **row)};
}

/// Holds a wait of the hub.
using hubwait_atom = caf::atom_constant<caf::atom("hubwait")>;
using rewatch_atom = caf::atom_constant<caf::atom("rewatch")>;

/// The wait hub: one actor holds every wait of the node (synchronous ones
/// and `wait_async`), so that a wait costs an entry, not an actor, a timer
/// and a subscription of its own. Waits of one execution share one
/// subscription with the registry, which announces the execution's end
/// (`finished_atom`, with its final state); an execution the registry does
/// not run (passive, or gone) is read from the store once, then announced
/// like the others if it runs again. Deadlines share one timer on the
/// engine's clock: the earliest. When the registry goes (a restart by its
/// supervisor), every execution is watched again through its successor;
/// when the hub exits (the node stops), every wait is answered
/// `unavailable`.
struct wait_hub_state {
  struct waiter {
    wait_request_ptr req;
    /// Its entry in `deadlines`, if it has a deadline.
    std::optional<std::multimap<std::int64_t, wait_request_ptr>::iterator> due;
  };
  struct entry {
    std::vector<waiter> waiters;
    /// The registry that has the hub subscribed for this execution.
    caf::actor engine;
  };
  using entries = std::unordered_map<std::string, entry>;
  context_ptr ctx;
  /// Shared with the functor that answers every wait when the hub exits.
  std::shared_ptr<entries> ids = std::make_shared<entries>();
  std::multimap<std::int64_t, wait_request_ptr> deadlines;
  /// The due time of the tick on its way, if one is.
  std::optional<std::int64_t> armed;
  /// A rewatch of every execution is on its way (the registry went).
  bool rewatch_due = false;
};

using wait_hub_actor = caf::stateful_actor<wait_hub_state>;

void hub_watch(wait_hub_actor* self, const std::string& id);

/// Sends the next tick for the earliest deadline, unless one that comes
/// early enough is on its way.
void hub_arm(wait_hub_actor* self) {
  auto& st = self->state;
  if (st.deadlines.empty()) return;
  auto earliest = st.deadlines.begin()->first;
  if (st.armed && *st.armed <= earliest) return;
  st.armed = earliest;
  auto delay = std::max<std::int64_t>(0, earliest - st.ctx->now_ms());
  st.ctx->clock().send_after(self, std::chrono::milliseconds{delay},
                             tick_atom::value);
}

/// Removes `w`'s deadline.
void hub_forget(wait_hub_actor* self, wait_hub_state::waiter& w) {
  if (w.due) self->state.deadlines.erase(*w.due);
  w.due.reset();
}

/// Drops the entry of `id` (no waits left): the registry lets go of the
/// hub's subscription.
void hub_drop(wait_hub_actor* self, wait_hub_state::entries::iterator i) {
  if (i->second.engine)
    self->send(i->second.engine, unsub_atom::value, i->first, caf::actor{self});
  self->state.ids->erase(i);
}

/// Removes the wait `req` (its deadline with it); false when the hub no
/// longer holds it (answered already).
bool hub_remove(wait_hub_actor* self, const wait_request_ptr& req) {
  auto i = self->state.ids->find(req->id);
  if (i == self->state.ids->end()) return false;
  auto& ws = i->second.waiters;
  auto w = std::find_if(ws.begin(), ws.end(), [&](const auto& x) {
    return x.req == req;
  });
  if (w == ws.end()) return false;
  hub_forget(self, *w);
  ws.erase(w);
  if (ws.empty()) hub_drop(self, i);
  return true;
}

/// Watches every execution whose subscription was lost again, in 10 ms
/// (once, however many losses are reported meanwhile).
void hub_rewatch_later(wait_hub_actor* self) {
  auto& st = self->state;
  if (st.rewatch_due) return;
  st.rewatch_due = true;
  st.ctx->clock().send_after(self, std::chrono::milliseconds{10},
                             rewatch_atom::value);
}

/// Answers every wait of `id` with `r`.
void hub_answer(wait_hub_actor* self, const std::string& id,
                const caf::expected<execution_view>& r) {
  auto i = self->state.ids->find(id);
  if (i == self->state.ids->end()) return;
  auto waiters = std::move(i->second.waiters);
  hub_drop(self, i);
  for (auto& w : waiters) {
    hub_forget(self, w);
    w.req->done(r);
  }
}

/// The store's view of `id` when it is terminal: answers its waits.
bool hub_look(wait_hub_actor* self, const std::string& id) {
  auto seen = terminal_view(*self->state.ctx, id);
  if (!seen) return false;
  hub_answer(self, id, *seen);
  return true;
}

/// An end the registry announced, with the final state or without it.
void hub_finished(wait_hub_actor* self, const std::string& id,
                  const final_state_ptr& fin) {
  auto i = self->state.ids->find(id);
  if (i == self->state.ids->end()) return;
  i->second.engine = nullptr; // the registry dropped its subscribers
  if (fin && fin->state) {
    hub_answer(self, id, view_of_final(id, *fin));
    return;
  }
  // Announced without its state: the store says; if it does not show the
  // end yet, watch again.
  if (!hub_look(self, id)) hub_watch(self, id);
}

/// Subscribes for `id` with the registry; a finish it learns later reaches
/// the hub in order after its reply.
void hub_watch(wait_hub_actor* self, const std::string& id) {
  auto& st = self->state;
  auto engine = st.ctx->registry();
  if (!engine) {
    // Between registries: the store may know; the rewatch tries again.
    if (!hub_look(self, id)) hub_rewatch_later(self);
    return;
  }
  auto i = st.ids->find(id);
  if (i == st.ids->end()) return; // answered meanwhile
  i->second.engine = engine;
  self->request(engine, caf::infinite, watch_atom::value, id, caf::actor{self})
    .then(
      [self, id](std::int32_t code, final_state_ptr& fin) {
        auto reply = static_cast<watch_reply>(code);
        if (reply == watch_reply::finished) {
          hub_finished(self, id, fin);
          return;
        }
        if (reply == watch_reply::unknown) hub_look(self, id);
      },
      [self, id](caf::error&) {
        // The registry went before it took the watch (its gone message
        // then never comes): watch through its successor.
        auto i = self->state.ids->find(id);
        if (i != self->state.ids->end()) i->second.engine = nullptr;
        hub_rewatch_later(self);
      });
}

caf::behavior wait_hub(wait_hub_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  self->attach_functor([ids = self->state.ids](const caf::error&) {
    for (auto& [id, e] : *ids)
      for (auto& w : e.waiters)
        w.req->done(wait_stopping());
    ids->clear();
  });
  return {
    [self](start_atom, const start_carry_ptr& carry) {
      auto registry = self->state.ctx->registry();
      auto ok = [carry](bool created) {
        carry->done(created);
      };
      auto failed = [carry](caf::error& err) {
        carry->done(from_request(err, carry->id));
      };
      if (carry->timed)
        self
          ->request(registry, answer_timeout, start_atom::value, carry->id,
                    carry->first)
          .then(ok, failed);
      else
        self
          ->request(registry, caf::infinite, start_atom::value, carry->id,
                    carry->first)
          .then(ok, failed);
    },
    [self](hubwait_atom, const wait_request_ptr& req) {
      auto& st = self->state;
      auto [i, fresh] = st.ids->try_emplace(req->id);
      wait_hub_state::waiter w{req, std::nullopt};
      if (req->deadline_ms) {
        w.due = st.deadlines.emplace(*req->deadline_ms, req);
        hub_arm(self);
      }
      i->second.waiters.push_back(std::move(w));
      if (fresh) hub_watch(self, req->id);
    },
    [self](unsub_atom, const wait_request_ptr& req) {
      // A synchronous wait whose deadline passed.
      hub_remove(self, req);
    },
    [self](finished_atom, const std::string& id, final_state_ptr& fin) {
      hub_finished(self, id, fin);
    },
    [self](finished_atom, const std::string& id) {
      hub_finished(self, id, nullptr);
    },
    [self](gone_atom, const caf::error&) {
      // The registry exited (once per execution watched): its successor
      // holds no subscription; watch everything again through it.
      for (auto& [id, e] : *self->state.ids)
        e.engine = nullptr;
      hub_rewatch_later(self);
    },
    [self](rewatch_atom) {
      auto& st = self->state;
      st.rewatch_due = false;
      std::vector<std::string> lost;
      for (auto& [id, e] : *st.ids)
        if (!e.engine) lost.push_back(id);
      for (auto& id : lost)
        if (st.ids->count(id) > 0) hub_watch(self, id);
    },
    [self](tick_atom) {
      auto& st = self->state;
      st.armed.reset();
      auto now = st.ctx->now_ms();
      while (!st.deadlines.empty() && st.deadlines.begin()->first <= now) {
        auto req = st.deadlines.begin()->second;
        // One last look: the end may be recorded without an announcement
        // having reached the hub yet (answers every wait of the id).
        if (!hub_look(self, req->id) && hub_remove(self, req))
          req->done(wait_deadline(req->id, req->timeout));
        // A deadline whose wait the hub no longer holds must not loop.
        if (!st.deadlines.empty() && st.deadlines.begin()->second == req)
          st.deadlines.erase(st.deadlines.begin());
      }
      hub_arm(self);
    },
  };
}

caf::expected<execution_view>
local_engine::wait(const std::string& id, std::chrono::milliseconds timeout) {
  if (auto err = check_id(id)) return err;
  // The hub answers through the promise; the deadline is this thread's (real
  // time), so the hub holds the wait without one.
  auto answer = std::make_shared<std::promise<caf::expected<execution_view>>>();
  auto got = answer->get_future();
  auto req = std::make_shared<wait_request>();
  req->id = id;
  req->done = [answer](caf::expected<execution_view> r) {
    answer->set_value(std::move(r));
  };
  auto hub = ctx_->wait_hub();
  if (hub) {
    caf::anon_send(hub, hubwait_atom::value, wait_request_ptr{req});
    if (got.wait_for(timeout) == std::future_status::ready) return got.get();
    caf::anon_send(hub, unsub_atom::value, wait_request_ptr{req});
  }
  if (auto seen = terminal_view(*ctx_, id); seen && *seen)
    return std::move(*seen);
  if (!hub) return wait_stopping();
  return wait_deadline(id, timeout);
}

using more_atom = caf::atom_constant<caf::atom("more")>;

bool is_terminal_event(const events::Event& ev) {
  return ev.has_execution_completed() || ev.has_execution_failed()
         || ev.has_execution_cancelled();
}

/// One `follow`: reads the history from `next` at the start and whenever
/// the feed says a commit added events, hands what is new to the sink, and
/// quits after the terminal event, when the sink says stop, when stopped
/// (an exit message) or when the node stops (its registry, with which it
/// subscribes like a waiter, says it is gone).
struct follower_state {
  event_feed::subscription sub;
  caf::actor engine;
  std::int64_t next = 0;
  bool started = false;
  int store_retries = 0;
};

caf::behavior follower(caf::stateful_actor<follower_state>* self,
                       context_ptr ctx, std::string id, std::int64_t from_seq,
                       follow_sink sink) {
  auto& st = self->state;
  st.next = from_seq;
  st.sub = ctx->feed().subscribe(id, [me = caf::actor_cast<caf::actor>(self)] {
    caf::anon_send(me, more_atom::value);
  });
  // Every way out unsubscribes from the registry (a subscription, not a
  // monitor: a demonitor walks the monitored actor's whole list in CAF
  // 0.17, quadratic for thousands of followers).
  auto leave = [=](caf::error reason) {
    auto& st = self->state;
    st.sub.reset();
    if (st.engine)
      self->send(st.engine, unsub_atom::value, id, caf::actor{self});
    st.engine = nullptr;
    self->quit(std::move(reason));
  };
  auto finish = [=](caf::error err) {
    self->state.sub.reset();
    if (sink.end) sink.end(std::move(err));
    leave({});
  };
  // The registry is stopping or was restarted by its supervisor: either
  // way the follower ends (an actor left following would hold the node's
  // exit); the client follows again from where it was.
  auto registry_gone = [=] {
    self->state.engine = nullptr;
    finish(make_error(errc::unavailable,
                      "the node is stopping; follow again from the last "
                      "event received"));
  };
  // Subscribed like a waiter: the registry tells it `gone` when it exits.
  if (auto engine = ctx->registry()) {
    st.engine = engine;
    self
      ->request(engine, caf::infinite, subscribe_atom::value, id,
                caf::actor{self})
      .then([] {},
            [=](caf::error&) {
              // Gone before it took the subscription.
              if (self->state.engine) registry_gone();
            });
  }
  // follow_stop's exit message.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    leave(std::move(msg.reason));
  });
  auto read = [=] {
    auto& st = self->state;
    // At the start, an execution already terminal ends the follow even
    // when `from_seq` is past its terminal event.
    bool was_terminal = false;
    if (!st.started) {
      auto row = ctx->store().get_execution(id);
      if (!row) return finish(from_store(row.err(), "cannot read " + id));
      if (!row->has_value()) return finish(no_execution(id));
      was_terminal = eventstore::is_terminal((*row)->status);
    }
    auto events = eventstore::history_of(ctx->store(), id, st.next);
    if (!events) {
      if (!st.started || !is_outage(events.err()))
        return finish(
          from_store(events.err(), "cannot read the history of " + id));
      ctx->health().failed(events.err());
      ctx->clock().send_after(
        self, backoff_delay(store_backoff, st.store_retries++, id),
        more_atom::value);
      return;
    }
    st.store_retries = 0;
    auto batch = std::move(*events);
    bool last = was_terminal;
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (is_terminal_event(batch[i])) {
        batch.resize(i + 1);
        last = true;
        break;
      }
    if (!batch.empty()) st.next = batch.back().seq() + 1;
    if (st.started && batch.empty()) return;
    st.started = true;
    if (!sink.events(std::move(batch))) return leave({});
    if (last) finish({});
  };
  read();
  return {
    [=](more_atom) {
      read();
    },
    [=](gone_atom, const caf::error&) {
      registry_gone();
    },
    [=](finished_atom, const std::string&, const final_state_ptr&) {
      // The registry dropped its subscribers of the finished execution;
      // its terminal event reaches the follower through the feed.
      self->state.engine = nullptr;
    },
    [=](finished_atom, const std::string&) {
      self->state.engine = nullptr;
    },
  };
}

follow_stop local_engine::follow(const std::string& id, std::int64_t from_seq,
                                 follow_sink sink) {
  if (auto err = check_id(id)) {
    if (sink.end) sink.end(std::move(err));
    return [] {};
  }
  auto f = sys_->spawn(follower, ctx_, id, std::max<std::int64_t>(0, from_seq),
                       std::move(sink));
  return [f] {
    caf::anon_send_exit(f, caf::exit_reason::user_shutdown);
  };
}

void local_engine::wait_async(const std::string& id,
                              std::chrono::milliseconds timeout,
                              wait_callback done) {
  if (auto err = check_id(id)) {
    done(std::move(err));
    return;
  }
  auto hub = ctx_->wait_hub();
  if (!hub) {
    done(wait_stopping());
    return;
  }
  auto req = std::make_shared<wait_request>();
  req->id = id;
  req->deadline_ms = ctx_->now_ms() + timeout.count();
  req->timeout = timeout;
  req->done = std::move(done);
  caf::anon_send(hub, hubwait_atom::value, wait_request_ptr{std::move(req)});
}

} // namespace

caf::actor spawn_wait_hub(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(wait_hub, std::move(ctx));
}

std::shared_ptr<engine_api> make_local_engine(caf::actor_system& sys,
                                              context_ptr ctx) {
  return std::make_shared<local_engine>(sys, std::move(ctx));
}

execution_view make_view(const eventstore::execution_row& row) {
  using eventstore::execution_status;
  return execution_view{.execution_id = row.execution_id,
                        .workflow = row.workflow,
                        .workflow_version = row.workflow_version,
                        .status = row.status,
                        .created_at_ms = row.created_at_ms,
                        .updated_at_ms = row.updated_at_ms,
                        .wake_at_ms
                        = row.status == execution_status::sleeping
                            ? std::optional<std::int64_t>{row.wake_at_ms}
                            : std::nullopt,
                        .history_length = row.next_seq,
                        .phase = row.phase};
}

execution_view make_view(const workflow::execution_state& state,
                         const eventstore::execution_row& row) {
  auto v = make_view(row);
  v.status = to_store_status(state.status());
  v.input = state.input();
  if (state.status() == workflow::execution_status::completed)
    v.result = state.result();
  if (auto& err = state.error()) {
    v.error = error_view{err->kind, err->message, err->details, err->retryable};
  } else if (state.status() == workflow::execution_status::cancelled) {
    v.error = error_view{"cancelled",
                         "cancelled by " + state.cancel_by() + ": "
                           + state.cancel_reason(),
                         json::object(), false};
  }
  v.wake_at_ms.reset();
  if (state.status() == workflow::execution_status::sleeping)
    v.wake_at_ms = state.next_wake_ms();
  if (auto& ap = state.approval()) {
    v.awaiting_step = ap->step;
    v.approval_data = ap->data;
  }
  v.history_length = state.next_seq();
  v.phase = state.phase();
  return v;
}

} // namespace cerebelum::actors
