#pragma once

// The engine behind the front ends in the http_api and admin_service
// harnesses: an `engine_api` that records every call and answers with
// values drawn from the fuzz input (success, each error code, sizes, texts
// of any characters), and the node's store as the authenticator sees it (tokens
// in memory, dead letters drawn from the input). Everything answers at once
// on the caller's thread, so a run is one thread and replays exactly.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/engine_api.hpp"
#include "actors/errc.hpp"
#include "eventstore/event_store.hpp"
#include "src/auth/authenticator.hpp"
#include "src/auth/token.hpp"

namespace cerebelum::fuzz {

/// Bytes the answers are drawn from, in order; zeros once used up.
class answer_bytes {
 public:
  void reset(std::string_view bytes) {
    bytes_ = bytes;
    pos_ = 0;
  }

  std::uint8_t next() {
    return pos_ < bytes_.size() ? static_cast<std::uint8_t>(bytes_[pos_++]) : 0;
  }

  /// A text of up to `max` input bytes, as the engine's texts are: UTF-8
  /// with any character but NUL (its edges check what comes in with
  /// workflow::check_text). A byte below 0x80 is itself (control
  /// characters, quotes and backslashes too), one above is U+0080..U+00FF,
  /// NUL is U+FFFD.
  std::string text(std::size_t max) {
    auto n = std::min<std::size_t>(next() % (max + 1), bytes_.size() - pos_);
    std::string out;
    for (auto c : bytes_.substr(pos_, n)) {
      auto b = static_cast<std::uint8_t>(c);
      if (b == 0) {
        out += "\xEF\xBF\xBD";
      } else if (b < 0x80) {
        out += static_cast<char>(b);
      } else {
        out += static_cast<char>(0xC0 | (b >> 6));
        out += static_cast<char>(0x80 | (b & 0x3F));
      }
    }
    pos_ += n;
    return out;
  }

  /// One of `choices`.
  template <std::size_t N>
  const char* pick(const char* const (&choices)[N]) {
    return choices[next() % N];
  }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

/// One call the engine received.
struct engine_call {
  std::string op;
  /// The execution (or dead letter) it names.
  std::string id;
  /// Who it records (`by`, `started_by`), when it records someone.
  std::optional<std::string> by;
  /// The workflow a start or a list names.
  std::optional<std::string> workflow;
};

/// The node's store as the authenticator and the scope checks read it:
/// tokens kept in memory, dead letters drawn from the input; everything
/// else is refused (no front end under test reads it).
class fuzz_store final : public eventstore::event_store {
 public:
  explicit fuzz_store(answer_bytes& in) : in_(in) {
    // nop
  }

  /// The executions of the dead letters read for the current input.
  std::vector<std::string> dead_letter_executions;

  /// The tokens as they are now (`restore` brings them back).
  [[nodiscard]] std::map<std::string, eventstore::token_row> snapshot() const {
    return tokens_;
  }

  void restore(std::map<std::string, eventstore::token_row> tokens) {
    tokens_ = std::move(tokens);
  }

  eventstore::status put_token(const eventstore::token_row& row) override {
    if (row.id.empty() || row.hash.empty() == row.cert_subject.empty())
      return eventstore::make_error(eventstore::errc::invalid_argument,
                                    "a token needs an id and one of a hash "
                                    "and a subject");
    if (!tokens_.emplace(row.id, row).second)
      return eventstore::make_error(eventstore::errc::conflict,
                                    "token " + row.id + " exists");
    return eventstore::ok_status();
  }

  eventstore::result<std::optional<eventstore::token_row>>
  get_token(std::string_view id) override {
    auto i = tokens_.find(std::string{id});
    if (i == tokens_.end()) return std::optional<eventstore::token_row>{};
    return std::optional<eventstore::token_row>{i->second};
  }

  eventstore::result<std::vector<eventstore::token_row>>
  list_tokens() override {
    std::vector<eventstore::token_row> out;
    for (const auto& [id, row] : tokens_)
      out.push_back(row);
    return out;
  }

  eventstore::result<bool> revoke_token(std::string_view id,
                                        std::int64_t at_ms) override {
    auto i = tokens_.find(std::string{id});
    if (i == tokens_.end()) return false;
    if (i->second.revoked_at_ms == 0) i->second.revoked_at_ms = at_ms;
    return true;
  }

  eventstore::status touch_token(std::string_view id,
                                 std::int64_t at_ms) override {
    auto i = tokens_.find(std::string{id});
    if (i != tokens_.end() && i->second.last_used_ms < at_ms)
      i->second.last_used_ms = at_ms;
    return eventstore::ok_status();
  }

  /// Found (of an execution named by the input), absent, or unavailable.
  eventstore::result<std::optional<eventstore::dead_letter_row>>
  get_dead_letter(std::int64_t id) override {
    switch (in_.next() % 4) {
      case 0:
        return eventstore::make_error(eventstore::errc::unavailable,
                                      "the fuzz store is away", true);
      case 1: return std::optional<eventstore::dead_letter_row>{};
      default: {
        eventstore::dead_letter_row row;
        row.id = id;
        row.execution_id = "dl-" + in_.text(12);
        dead_letter_executions.push_back(row.execution_id);
        return std::optional<eventstore::dead_letter_row>{std::move(row)};
      }
    }
  }

  std::vector<eventstore::append_result>
  append_batch(std::span<const eventstore::append_request> reqs) override {
    return std::vector<eventstore::append_result>(reqs.size(), refused());
  }
  eventstore::result<std::size_t>
  read(std::string_view, std::int64_t,
       const eventstore::read_callback&) override {
    return refused();
  }
  eventstore::result<std::optional<eventstore::execution_row>>
  get_execution(std::string_view) override {
    return refused();
  }
  eventstore::result<eventstore::execution_page>
  list_executions(const eventstore::list_filter&, std::size_t,
                  std::string_view) override {
    return refused();
  }
  eventstore::result<eventstore::execution_page>
  open_executions(std::size_t, std::string_view) override {
    return refused();
  }
  eventstore::result<std::vector<eventstore::timer_row>>
  due_timers(std::int64_t, std::size_t) override {
    return refused();
  }
  eventstore::result<std::vector<eventstore::timer_row>>
  timers_of(std::string_view) override {
    return refused();
  }
  eventstore::result<std::vector<eventstore::task_row>>
  tasks_of(std::string_view) override {
    return refused();
  }
  eventstore::result<eventstore::task_page>
  all_tasks(std::size_t, std::string_view) override {
    return refused();
  }
  eventstore::result<eventstore::dead_letter_page>
  list_dead_letters(std::string_view, std::size_t, std::string_view) override {
    return refused();
  }
  eventstore::status
  put_definitions(std::span<const eventstore::definition_row>) override {
    return refused();
  }
  eventstore::result<std::optional<eventstore::definition_row>>
  get_definition(std::string_view, std::uint64_t) override {
    return refused();
  }
  eventstore::result<std::vector<eventstore::definition_row>>
  list_definitions(std::string_view, bool) override {
    return refused();
  }
  int schema_version() const noexcept override {
    return eventstore::current_schema_version;
  }

 private:
  static eventstore::error refused() {
    return eventstore::make_error(eventstore::errc::storage_error,
                                  "not kept by the fuzz store");
  }

  answer_bytes& in_;
  std::map<std::string, eventstore::token_row> tokens_;
};

/// The tokens a harness presents: one of each role, a starter scoped to
/// workflow "order", a reader scoped to "order" and "nap", an expired and a
/// revoked admin token, and a certificate-bound operator.
struct fuzz_tokens {
  std::map<std::string, std::string> text; ///< by name ("admin", "scoped")
  std::map<std::string, auth::principal> who;
  std::string subject = "CN=fuzz-client,O=Example";
};

/// Fixed time: a token's check is remembered for good, and the one slow
/// hash of a wrong secret happens once per token id.
inline constexpr std::int64_t fuzz_now_ms = 1'700'000'000'000;

/// Makes the tokens in `store` and checks each once with `auth`, so that
/// the runs find them remembered (no slow hash per input). One secret is
/// hashed and every token shares it (under its own id): the slow hash runs
/// once per token, in these checks, not twice.
inline fuzz_tokens make_fuzz_tokens(fuzz_store& store,
                                    auth::authenticator& auth) {
  fuzz_tokens t;
  auth::token_spec first;
  first.name = "fuzz-admin";
  first.r = auth::role::admin;
  auto made = auth::make_token(first, fuzz_now_ms - 1000);
  auto secret = auth::parse_token(made.text)->secret;
  auto add = [&](const std::string& key, auth::role r,
                 std::vector<std::string> workflows, std::int64_t expires = 0) {
    auto row = made.row;
    row.id = auth::random_hex(8);
    row.name = "fuzz-" + key;
    row.role = std::string{auth::to_string(r)};
    row.workflows = workflows;
    row.expires_at_ms = expires;
    (void)store.put_token(row);
    t.text[key] = "cbm_" + row.id + "_" + secret;
    t.who[key] = auth::principal{row.name, r, row.id, {}, std::move(workflows)};
    return row.id;
  };
  add("admin", auth::role::admin, {});
  add("operator", auth::role::operator_, {});
  add("starter", auth::role::starter, {});
  add("reader", auth::role::reader, {});
  add("worker", auth::role::worker, {});
  add("scoped", auth::role::starter, {"order"});
  add("scoped2", auth::role::reader, {"order", "nap"});
  add("expired", auth::role::admin, {}, fuzz_now_ms - 1);
  auto revoked = add("revoked", auth::role::admin, {});
  (void)store.revoke_token(revoked, fuzz_now_ms - 10);
  t.who.erase("expired");
  t.who.erase("revoked");
  // A known id with a wrong secret: refused, hashed once.
  auto wrong = t.text["reader"];
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  t.text["wrong"] = wrong;
  auth::token_spec cert;
  cert.name = "fuzz-cert";
  cert.r = auth::role::operator_;
  auto row = auth::make_cert_principal(cert, t.subject, fuzz_now_ms - 1000);
  (void)store.put_token(row);
  t.who["cert"] = auth::principal{cert.name, cert.r, row.id, {}, {}};
  for (const auto& [key, text] : t.text)
    (void)auth.check(text, auth::permission::read);
  (void)auth.check(auth::presented{{}, t.subject}, auth::permission::read);
  return t;
}

/// The engine: records every call, answers from `in`.
class fuzz_engine final : public actors::engine_api {
 public:
  explicit fuzz_engine(answer_bytes& in, eventstore::event_store* store)
    : in_(in), store_(store) {
    // nop
  }

  /// Calls of the current input; cleared by `reset`.
  std::vector<engine_call> calls;
  /// The workflow each describe answered, by execution id.
  std::map<std::string, std::string> described;
  /// Whether an answer was an error the transports show as an internal one
  /// (HTTP 500, gRPC INTERNAL).
  bool gave_internal = false;

  void reset() {
    calls.clear();
    described.clear();
    gave_internal = false;
  }

  caf::expected<actors::start_response>
  start(const actors::start_request& req) override {
    calls.push_back({"start", req.execution_id, req.started_by, req.workflow});
    if (auto err = maybe_error()) return err;
    actors::start_response out;
    out.execution = view(req.execution_id.empty() ? "generated"
                                                  : req.execution_id);
    out.execution.workflow = req.workflow;
    out.execution.input = req.input;
    out.created = in_.next() % 2 == 0;
    return out;
  }

  void start_async(const actors::start_request& req,
                   start_callback done) override {
    done(start(req));
  }

  caf::expected<actors::execution_view>
  describe(const std::string& id) override {
    calls.push_back({"describe", id, {}, {}});
    if (auto err = maybe_error()) return err;
    auto v = view(id);
    described[id] = v.workflow;
    return v;
  }

  caf::expected<actors::list_response>
  list(const actors::list_request& req) override {
    calls.push_back({"list", {}, {}, req.workflow});
    if (auto err = maybe_error()) return err;
    actors::list_response out;
    for (int i = in_.next() % 4; i > 0; --i)
      out.executions.push_back(view("l-" + in_.text(8)));
    out.next_page_token = in_.text(16);
    return out;
  }

  caf::expected<std::vector<events::Event>>
  history(const std::string& id, std::int64_t from_seq) override {
    calls.push_back({"history", id, {}, {}});
    if (auto err = maybe_error()) return err;
    return events(from_seq);
  }

  caf::expected<actors::execution_view> approve(const std::string& id,
                                                const actors::operator_id& who,
                                                const actors::json&) override {
    return decided("approve", id, who);
  }

  caf::expected<actors::execution_view> reject(const std::string& id,
                                               const actors::operator_id& who,
                                               const std::string&) override {
    return decided("reject", id, who);
  }

  caf::expected<actors::execution_view> cancel(const std::string& id,
                                               const actors::operator_id& who,
                                               const std::string&) override {
    return decided("cancel", id, who);
  }

  caf::expected<actors::execution_view>
  wait(const std::string& id, std::chrono::milliseconds) override {
    calls.push_back({"wait", id, {}, {}});
    if (auto err = maybe_error()) return err;
    return view(id);
  }

  void wait_async(const std::string& id, std::chrono::milliseconds timeout,
                  wait_callback done) override {
    done(wait(id, timeout));
  }

  /// The history in one or two batches, then the end (an error or none);
  /// a batch refused stops it, as the engine's follow does.
  actors::follow_stop follow(const std::string& id, std::int64_t from_seq,
                             actors::follow_sink sink) override {
    calls.push_back({"follow", id, {}, {}});
    if (auto err = maybe_error()) {
      sink.end(std::move(err));
      return [] {};
    }
    for (int i = 1 + in_.next() % 2; i > 0; --i)
      if (!sink.events(events(from_seq))) return [] {};
    caf::error end;
    if (in_.next() % 3 == 0) end = error();
    sink.end(std::move(end));
    return [] {};
  }

  std::vector<actors::workflow_view> workflows() override {
    calls.push_back({"workflows", {}, {}, {}});
    std::vector<actors::workflow_view> out;
    for (int i = in_.next() % 4; i > 0; --i) {
      actors::workflow_view w;
      w.name = workflow_name();
      w.version = in_.next() * 977u;
      w.source = in_.text(12);
      w.loaded = in_.next() % 2;
      w.latest = in_.next() % 2;
      w.stored = in_.next() % 2;
      w.stored_at_ms = in_.next();
      w.open_executions = in_.next();
      w.owner = in_.text(16);
      out.push_back(std::move(w));
    }
    return out;
  }

  caf::expected<actors::upgrade_report>
  check_upgrade(const std::string& text, const std::string& file) override {
    calls.push_back({"check_upgrade", file, {}, {}});
    return report(text);
  }

  caf::expected<actors::upgrade_report>
  migrate(const std::string& text, const std::string& file,
          const actors::operator_id& who) override {
    calls.push_back({"migrate", file, who.by, {}});
    return report(text);
  }

  actors::health_view health() override {
    calls.push_back({"health", {}, {}, {}});
    actors::health_view h;
    h.store_available = in_.next() % 4 != 0;
    if (!h.store_available) {
      h.store_unavailable_since_ms = fuzz_now_ms - in_.next();
      h.store_error = in_.text(24);
    }
    h.waiting = in_.next();
    h.outages = in_.next();
    return h;
  }

  actors::node_metrics& metrics() override {
    return metrics_;
  }

  std::string metrics_text() override {
    return metrics_.text();
  }

  caf::expected<actors::dead_letter_list>
  dead_letters(const std::string& queue, std::size_t,
               const std::string&) override {
    calls.push_back({"dead_letters", queue, {}, {}});
    if (auto err = maybe_error()) return err;
    actors::dead_letter_list out;
    for (int i = in_.next() % 3; i > 0; --i) {
      actors::dead_letter_view v;
      v.id = in_.next();
      v.task_id = in_.text(8);
      v.execution_id = "dl-" + in_.text(8);
      v.workflow = workflow_name();
      v.step = in_.text(8);
      v.queue = queue;
      v.attempt = in_.next();
      // As the store keeps them: JSON texts (or none).
      v.input_json = in_.next() % 2 ? "{\"n\": 1}" : "";
      v.error_kind = in_.text(8);
      v.error_message = in_.text(16);
      v.error_details_json = in_.next() % 2 ? "{\"why\": \"x\"}" : "";
      v.error_retryable = in_.next() % 2;
      v.failed_at_ms = fuzz_now_ms;
      out.items.push_back(std::move(v));
    }
    out.next_page_token = in_.text(8);
    return out;
  }

  caf::expected<actors::execution_view>
  retry_dead_letter(std::int64_t id, const actors::operator_id& who) override {
    return decided("retry_dead_letter", std::to_string(id), who);
  }

  caf::expected<actors::workflow_owner_view>
  workflow_owner(const std::string& name) override {
    calls.push_back({"workflow_owner", name, {}, name});
    if (auto err = maybe_error()) return err;
    return owner_view(name);
  }

  caf::expected<actors::workflow_owner_view>
  transfer_workflow(const std::string& name, const std::string& to,
                    const std::string&) override {
    // Who transfers is recorded as a worker identity ("token 'NAME'"), not
    // as a principal's name: the harnesses check the name's scope only.
    calls.push_back({"transfer_workflow", name, {}, name});
    if (auto err = maybe_error()) return err;
    return owner_view(name);
  }

  eventstore::event_store* token_store() override {
    return store_;
  }

 private:
  /// An error of any code (with a message of any bytes), one answer in
  /// four.
  caf::error maybe_error() {
    if (in_.next() % 4 != 0) return {};
    return error();
  }

  caf::error error() {
    static constexpr actors::errc codes[]
      = {actors::errc::not_found,         actors::errc::unknown_workflow,
         actors::errc::invalid_argument,  actors::errc::not_awaiting_approval,
         actors::errc::already_terminal,  actors::errc::deadline_exceeded,
         actors::errc::unavailable,       actors::errc::internal,
         actors::errc::store_damaged,     actors::errc::not_retryable,
         actors::errc::payload_too_large, actors::errc::overloaded,
         actors::errc::incompatible,      actors::errc::unauthenticated,
         actors::errc::permission_denied, actors::errc::data_dir_unusable,
         actors::errc::data_dir_locked,   actors::errc::not_transferable};
    auto code = codes[in_.next() % std::size(codes)];
    if (code == actors::errc::internal || code == actors::errc::store_damaged)
      gave_internal = true;
    return actors::make_error(code, in_.text(40));
  }

  caf::expected<actors::execution_view>
  decided(const char* op, const std::string& id,
          const actors::operator_id& who) {
    calls.push_back({op, id, who.by, {}});
    if (auto err = maybe_error()) return err;
    return view(id);
  }

  /// An owner as the engine reports one; the stored row one time in two.
  actors::workflow_owner_view owner_view(const std::string& name) {
    actors::workflow_owner_view v;
    v.name = name;
    v.owner = in_.text(16);
    if (in_.next() % 2 != 0) {
      eventstore::workflow_owner_row row;
      row.name = name;
      row.owner = v.owner;
      row.claimed_at_ms = in_.next();
      row.previous_owner = in_.text(16);
      row.replaced_by = in_.text(16);
      row.replaced_at_ms = in_.next();
      v.stored = std::move(row);
    }
    return v;
  }

  std::string workflow_name() {
    static constexpr const char* names[] = {"order", "nap", "other", "order",
                                            ""};
    std::string name = in_.pick(names);
    return name.empty() ? in_.text(10) : name;
  }

  /// A JSON value drawn from the input: nothing, a number, a text of any
  /// bytes, or an object holding one.
  actors::json value() {
    switch (in_.next() % 4) {
      case 0: return nullptr;
      case 1: return in_.next() - 100;
      case 2: return in_.text(16);
      default: return {{"k", in_.text(12)}, {"n", in_.next()}};
    }
  }

  actors::execution_view view(const std::string& id) {
    using st = eventstore::execution_status;
    static constexpr st statuses[]
      = {st::running,   st::sleeping, st::awaiting_approval,
         st::completed, st::failed,   st::cancelled};
    actors::execution_view v;
    v.execution_id = id;
    v.workflow = workflow_name();
    v.workflow_version = in_.next() * 1'000'003ull;
    v.status = statuses[in_.next() % std::size(statuses)];
    v.created_at_ms = fuzz_now_ms - in_.next();
    v.updated_at_ms = fuzz_now_ms;
    v.input = value();
    switch (v.status) {
      case st::completed: v.result = value(); break;
      case st::failed:
      case st::cancelled:
        v.error = actors::error_view{in_.text(10), in_.text(30), value(),
                                     in_.next() % 2 == 0};
        break;
      case st::sleeping: v.wake_at_ms = fuzz_now_ms + in_.next(); break;
      case st::awaiting_approval:
        v.awaiting_step = in_.text(10);
        v.approval_data = value();
        break;
      default: break;
    }
    v.history_length = in_.next();
    v.phase = in_.text(8);
    if (in_.next() % 8 == 0) v.stuck_reason = in_.text(20);
    return v;
  }

  /// Events of several payloads, their texts (JSON fields too) of any
  /// bytes.
  std::vector<events::Event> events(std::int64_t from) {
    std::vector<events::Event> out;
    for (int i = in_.next() % 4; i > 0; --i) {
      events::Event ev;
      ev.set_seq(from++);
      ev.set_recorded_at_ms(fuzz_now_ms);
      switch (in_.next() % 6) {
        case 0: {
          auto* p = ev.mutable_execution_started();
          p->set_workflow(workflow_name());
          p->set_input_json(in_.next() % 2 ? "{\"a\": [1, 2]}" : in_.text(20));
          p->set_started_by(in_.text(10));
          break;
        }
        case 1: {
          auto* p = ev.mutable_step_completed();
          p->set_step(in_.text(10));
          p->set_attempt(in_.next());
          p->set_result_json(in_.next() % 2 ? "{\"ok\": true}" : in_.text(20));
          break;
        }
        case 2: {
          auto* p = ev.mutable_step_failed();
          p->set_step(in_.text(10));
          p->mutable_error()->set_kind(in_.text(8));
          p->mutable_error()->set_message(in_.text(20));
          p->mutable_error()->set_details_json(in_.text(20));
          break;
        }
        case 3: {
          auto* p = ev.mutable_approval_granted();
          p->set_step(in_.text(10));
          p->set_by(in_.text(10));
          p->set_data_json(in_.text(20));
          break;
        }
        case 4: {
          // Any message the bytes make (unknown fields and payloads too).
          auto raw = in_.text(40);
          if (!ev.ParseFromString(raw)) ev.Clear();
          ev.set_seq(from - 1);
          break;
        }
        default:
          ev.mutable_execution_completed()->set_result_json(in_.text(20));
      }
      out.push_back(std::move(ev));
    }
    return out;
  }

  caf::expected<actors::upgrade_report> report(const std::string& text) {
    if (auto err = maybe_error()) return err;
    actors::upgrade_report r;
    r.workflow = workflow_name();
    r.version = text.size() * 31u + in_.next();
    for (int i = in_.next() % 3; i > 0; --i) {
      actors::upgrade_check_view c;
      c.execution_id = in_.text(8);
      c.version = in_.next();
      c.compatible = in_.next() % 2;
      if (!c.compatible) {
        c.seq = in_.next();
        c.event_type = in_.text(10);
        c.step = in_.text(8);
        c.reason = in_.text(20);
      }
      c.migrated = c.compatible && in_.next() % 2;
      r.executions.push_back(std::move(c));
    }
    return r;
  }

  answer_bytes& in_;
  eventstore::event_store* store_;
  actors::node_metrics metrics_;
};

/// Whether `who`'s workflow scope (`--workflows`; empty: every workflow)
/// takes `workflow`.
inline bool in_scope(const auth::principal& who, const std::string& workflow) {
  if (who.workflows.empty()) return true;
  for (const auto& w : who.workflows)
    if (w == workflow) return true;
  return false;
}

/// What a front end owes principal `who` in the engine calls of one
/// allowed request: every recorded `by` is its name, and a scoped
/// principal stays in its scope (the workflows it names, lists filtered to
/// them, and each call of `execution_ops` on an execution the front end
/// read first and found in the scope). The first broken rule, or "".
inline std::string
principal_call_error(const fuzz_engine& engine, const auth::principal& who,
                     std::initializer_list<std::string_view> execution_ops) {
  for (const auto& c : engine.calls) {
    if (c.by && *c.by != who.name)
      return c.op + " recorded '" + *c.by + "', not the principal " + who.name;
    if (who.workflows.empty()) continue;
    if (c.workflow && !in_scope(who, *c.workflow))
      return c.op + " of workflow '" + *c.workflow + "' for scoped " + who.name;
    if (c.op == "list" && !c.workflow)
      return "a list of every workflow for scoped " + who.name;
    if (std::find(execution_ops.begin(), execution_ops.end(), c.op)
        != execution_ops.end()) {
      auto d = engine.described.find(c.id);
      if (d == engine.described.end() || !in_scope(who, d->second))
        return c.op + " of execution '" + c.id + "' outside the scope of "
               + who.name;
    }
  }
  return {};
}

} // namespace cerebelum::fuzz
