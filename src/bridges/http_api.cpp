#include "src/bridges/http_api.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "actors/engine_api.hpp"
#include "actors/errc.hpp"
#include "src/bridges/error_mapping.hpp"
#include "src/bridges/http_support.hpp"
#include "src/bridges/json_convert.hpp"
#include "src/bridges/proto_convert.hpp"
#include "src/bridges/request_checks.hpp"
#include "src/bridges/request_gate.hpp"
#include "workflow/execution_state.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::api {

namespace {

using actors::errc;
using actors::make_error;
using engine_ptr = std::shared_ptr<actors::engine_api>;

/// The API's paths (regular expressions over the decoded path).
constexpr const char* start_path = R"(/v1/workflows/([^/]+)/executions)";
constexpr const char* list_path = "/v1/executions";
constexpr const char* execution_path = R"(/v1/executions/([^/]+))";
constexpr const char* history_path = R"(/v1/executions/([^/]+)/history)";
constexpr const char* events_path = R"(/v1/executions/([^/]+)/events)";
constexpr const char* health_path = "/v1/health";
constexpr const char* workflows_path = "/v1/workflows";
constexpr const char* upgrade_path = "/v1/workflows/check-upgrade";
constexpr const char* owner_path = R"(/v1/workflows/([^/]+)/owner)";
constexpr const char* approve_path = R"(/v1/executions/([^/]+)/approve)";
constexpr const char* reject_path = R"(/v1/executions/([^/]+)/reject)";
constexpr const char* cancel_path = R"(/v1/executions/([^/]+)/cancel)";
constexpr const char* dead_letters_path = "/v1/dead-letters";
constexpr const char* retry_path = R"(/v1/dead-letters/(-?[0-9]{1,18})/retry)";
/// Prometheus' conventional path, outside /v1 (not part of the API's
/// versioned shapes).
constexpr const char* metrics_path = "/metrics";

/// A `version` query parameter: a version hash in decimal; empty: 0 (the
/// latest version).
caf::expected<std::uint64_t> parse_version(const std::string& text) {
  if (text.empty()) return std::uint64_t{0};
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10)
      return actors::make_error(actors::errc::invalid_argument,
                                "version must be a version hash (a decimal "
                                "number), got '"
                                  + workflow::printable(text) + "'");
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

/// A page size given in the URL: 1 to 1000 (absent: the default).
caf::error check_given_page_size(const query_params& query,
                                 long long page_size) {
  if (query.has("page_size") && page_size == 0)
    return make_error(errc::invalid_argument,
                      "page_size: must be between 1 and 1000, got 0 (leave it "
                      "out for the default)");
  return check_page_size(page_size);
}

json view_json(const actors::execution_view& view) {
  return message_to_json(to_proto(view));
}

/// Admits the request through the node's gate for large requests; replies
/// 503 when no slot freed up in time.
std::optional<request_gate::ticket> admit(const std::string& body,
                                          http::response& res) {
  auto slot = request_gate::shared().admit(body.size());
  if (!slot)
    send_error(res, 503, "unavailable",
               "too many large requests in flight; retry later");
  return slot;
}

/// Counts a waiting request of `req`'s principal (`waits` null: none);
/// answers 429 (and returns nothing) when the principal holds its limit.
std::optional<principal_waits::ticket>
admit_wait(const principal_waits_ptr& waits, const http::request& req,
           http::response& res) {
  if (!waits) return principal_waits::ticket{};
  auto held = waits->admit(req.principal);
  if (!held) {
    send_error(res, held.error());
    return std::nullopt;
  }
  return std::move(*held);
}

/// Replies with the execution or the error.
void reply(http::response& res,
           const caf::expected<actors::execution_view>& view) {
  if (!view) return send_error(res, view.error());
  send_json(res, 200, view_json(*view));
}

/// A start checked and ready for the engine.
struct checked_start {
  actors::start_request req;
  /// `?wait=true`: answer once the execution ended, within `timeout`.
  bool wait = false;
  std::chrono::milliseconds timeout{0};
  /// The gate's slot, held until the start is answered.
  std::shared_ptr<request_gate::ticket> slot;
};

/// Checks a start request; answers `res` (and returns nothing) when it is
/// refused.
std::optional<checked_start> check_start(const http::request& req,
                                         http::response& res) {
  std::string workflow = req.captures[0];
  if (auto err = check_path_value("workflow", workflow)) {
    send_error(res, err);
    return std::nullopt;
  }
  auto fail = [&res](const caf::error& err) {
    send_error(res, err);
    return std::nullopt;
  };
  query_params query{req};
  if (auto err = query.only({"wait", "timeout_ms", "id", "by", "version"}))
    return fail(err);
  auto wait = query.flag("wait");
  if (!wait) return fail(wait.error());
  auto timeout = query.integer("timeout_ms", 0);
  if (!timeout) return fail(timeout.error());
  if (*timeout < 0 || *timeout > max_wait.count())
    return fail(make_error(errc::invalid_argument,
                           "timeout_ms: must be between 0 (the maximum) and "
                             + std::to_string(max_wait.count()) + ", got "
                             + std::to_string(*timeout)));
  auto id = query.text("id");
  if (!id) return fail(id.error());
  if (auto err = check_new_execution_id(*id)) return fail(err);
  auto by = query.text("by", {}, workflow::text_rule::label);
  if (!by) return fail(by.error());
  auto who = recorded_by(req.principal, *by);
  if (who.by.empty()) who.by = "http";
  auto version = query.text("version");
  if (!version) return fail(version.error());
  auto version_hash = parse_version(*version);
  if (!version_hash) return fail(version_hash.error());
  auto slot = admit(req.body, res);
  if (!slot) return std::nullopt;
  auto input = parse_json_field("body", req.body, json::object(), true);
  if (!input) return fail(input.error());
  checked_start out;
  out.req.workflow = std::move(workflow);
  out.req.input = std::move(*input);
  out.req.execution_id = std::move(*id);
  out.req.started_by = std::move(who.by);
  out.req.started_by_note = std::move(who.note);
  out.req.version = *version_hash;
  out.wait = *wait;
  out.timeout = wait_limit(std::chrono::milliseconds{*timeout});
  out.slot = std::make_shared<request_gate::ticket>(std::move(*slot));
  return out;
}

/// The answer to a start: 201 created, 200 known id.
http::response start_answer(bool created, const actors::execution_view& v) {
  http::response res;
  send_json(res, created ? 201 : 200,
            {{"created", created}, {"execution", view_json(v)}});
  return res;
}

/// POST /v1/workflows/{name}/executions. The start's commit and, with
/// `?wait=true`, the execution's end are awaited holding no thread
/// (engine_api::start_async, wait_async).
///
/// A `?wait=true` start counts as a waiting request of its principal from
/// before the start until the engine's wait ends (the execution's end, the
/// timeout or the node's stop), also when the client left before: the
/// engine holds the wait until then.
void start_route(http::server& srv, engine_ptr engine,
                 principal_waits_ptr waits) {
  srv.route("POST", start_path,
            [engine, waits](const http::request& req, http::responder answer) {
              http::response res;
              if (is_multipart(req)) {
                refuse_multipart(res);
                return answer.send(std::move(res));
              }
              auto checked = check_start(req, res);
              if (!checked) return answer.send(std::move(res));
              auto wait = checked->wait;
              auto timeout = checked->timeout;
              std::optional<principal_waits::ticket> counted;
              if (wait) {
                counted = admit_wait(waits, req, res);
                if (!counted) return answer.send(std::move(res));
              }
              auto held = std::make_shared<principal_waits::ticket>(
                counted ? std::move(*counted) : principal_waits::ticket{});
              engine->start_async(
                checked->req,
                [engine, answer, wait, timeout, slot = checked->slot,
                 held](caf::expected<actors::start_response> started) {
                  if (!started) {
                    held->release();
                    http::response res;
                    send_error(res, started.error());
                    return answer.send(std::move(res));
                  }
                  if (!wait)
                    return answer.send(
                      start_answer(started->created, started->execution));
                  engine->wait_async(
                    started->execution.execution_id, timeout,
                    [answer, created = started->created,
                     held](caf::expected<actors::execution_view> done) {
                      held->release();
                      if (done)
                        return answer.send(start_answer(created, *done));
                      http::response res;
                      send_error(res, done.error());
                      answer.send(std::move(res));
                    });
                });
            });
}

void list_route(http::server& srv, engine_ptr engine) {
  get_route(srv, list_path,
            [engine](const http::request& req, http::response& res) {
              query_params query{req};
              if (auto err = query.only(
                    {"status", "workflow", "page_size", "page_token", "stuck"}))
                return send_error(res, err);
              auto status_text = query.text("status");
              if (!status_text) return send_error(res, status_text.error());
              auto status = parse_status_filter(*status_text);
              if (!status) return send_error(res, status.error());
              auto page_size = query.integer("page_size", 0);
              if (!page_size) return send_error(res, page_size.error());
              if (auto err = check_given_page_size(query, *page_size))
                return send_error(res, err);
              auto workflow = query.text("workflow");
              if (!workflow) return send_error(res, workflow.error());
              auto token = query.text("page_token", {},
                                      workflow::text_rule::name, 4096);
              if (!token) return send_error(res, token.error());
              auto stuck = query.flag("stuck");
              if (!stuck) return send_error(res, stuck.error());
              actors::list_request lreq;
              lreq.stuck = *stuck;
              lreq.status = *status;
              std::optional<std::string> asked;
              if (query.has("workflow")) asked = std::move(*workflow);
              auto filter = scoped_filter(req.principal, req.workflows,
                                          std::move(asked));
              if (!filter) return send_error(res, filter.error());
              lreq.workflow = std::move(*filter);
              lreq.page_size = static_cast<std::size_t>(*page_size);
              lreq.page_token = std::move(*token);
              auto listed = engine->list(lreq);
              if (!listed) return send_error(res, listed.error());
              json items = json::array();
              for (auto& view : listed->executions)
                items.push_back(view_json(view));
              send_json(res, 200,
                        {{"executions", std::move(items)},
                         {"next_page_token", listed->next_page_token}});
            });
}

/// The `from_seq` query parameter (absent: 0).
caf::expected<std::int64_t> from_seq_of(const query_params& query) {
  auto from = query.integer("from_seq", 0);
  if (!from) return std::move(from.error());
  if (*from < 0)
    return make_error(errc::invalid_argument, "from_seq: must not be negative");
  return static_cast<std::int64_t>(*from);
}

/// The recorded history from `from` as one JSON answer.
void history_answer(actors::engine_api& engine, const std::string& id,
                    std::int64_t from, http::response& res) {
  auto events = engine.history(id, from);
  if (!events) return send_error(res, events.error());
  json items = json::array();
  for (auto& ev : *events)
    items.push_back(event_to_json(ev));
  send_json(res, 200, {{"execution_id", id}, {"events", std::move(items)}});
}

/// One server-sent event: `id` (omitted when negative), `type`, `data` on
/// one line (JSON text has no raw newline).
std::string sse_event(std::int64_t id, const std::string& type,
                      const json& data) {
  std::string out;
  if (id >= 0) out += "id: " + std::to_string(id) + "\n";
  out += "event: " + type + "\ndata: " + workflow::safe_dump(data) + "\n\n";
  return out;
}

/// GET /v1/executions/{id}/events?follow=true: the history from `from_seq`
/// (or after the `Last-Event-ID` a reconnecting EventSource sends) as
/// server-sent events, then each event as it is committed, until the
/// terminal one; then an `end` event. Holds no thread while it waits.
///
/// It counts as a waiting request of its principal until the follow ends
/// or the stream does (the client left, the server stops).
class event_follow : public std::enable_shared_from_this<event_follow> {
 public:
  event_follow(std::string id, http::responder answer,
               principal_waits::ticket held)
    : id_(std::move(id)), answer_(std::move(answer)), held_(std::move(held)) {
    // nop
  }

  void start(actors::engine_api& engine, std::int64_t from) {
    auto self = shared_from_this();
    actors::follow_sink sink;
    sink.events = [self](std::vector<events::Event> batch) {
      return self->on_events(std::move(batch));
    };
    sink.end = [self](caf::error err) {
      self->on_end(std::move(err));
    };
    auto stop = engine.follow(id_, from, std::move(sink));
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_) return stop();
    stop_ = std::move(stop);
  }

 private:
  /// Runs on the follower's thread, one call at a time.
  bool on_events(std::vector<events::Event> batch) {
    if (!out_) open();
    std::string text;
    for (auto& ev : batch) {
      text += sse_event(ev.seq(), event_type_name(ev), event_to_json(ev));
      next_ = ev.seq() + 1;
    }
    return text.empty() ? out_->open() : out_->write(std::move(text));
  }

  void on_end(caf::error err) {
    // Released before the last answer is sent: a client that waits again
    // once it has the end is not refused for this one.
    release();
    if (!out_ && err) {
      http::response res;
      send_error(res, err);
      return answer_.send(std::move(res));
    }
    if (!out_) open();
    if (err) {
      out_->write(sse_event(-1, "error", error_body(err)));
    } else {
      out_->write(
        sse_event(-1, "end", {{"execution_id", id_}, {"next_seq", next_}}));
    }
    out_->end();
  }

  void open() {
    http::response head;
    head.content_type = "text/event-stream; charset=utf-8";
    head.set_header("Cache-Control", "no-cache");
    // Proxies that buffer (nginx) pass the events on as they come.
    head.set_header("X-Accel-Buffering", "no");
    // How long a disconnected EventSource waits before reconnecting.
    head.body = "retry: 1000\n\n";
    // The same for every stream: built once.
    static const std::string stopping = sse_event(
      -1, "error",
      error_body(make_error(errc::unavailable,
                            "the node is stopping; follow again from the last "
                            "event received (Last-Event-ID)")));
    out_ = answer_.open_stream(std::move(head),
                               {.keepalive_text = ": keep-alive\n\n",
                                .keepalive_every = keepalive_every,
                                .stop_text = stopping});
    out_->on_end([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->stop();
    });
  }

  /// The client left or the server stops: the follower ends.
  void stop() {
    actors::follow_stop f;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopped_ = true;
      f = std::move(stop_);
    }
    if (f) f();
    release();
  }

  void release() {
    std::lock_guard<std::mutex> guard{mtx_};
    held_.release();
  }

  static constexpr std::chrono::milliseconds keepalive_every{15'000};

  std::string id_;
  http::responder answer_;
  std::optional<http::stream> out_;
  std::int64_t next_ = 0;
  std::mutex mtx_;
  actors::follow_stop stop_;
  bool stopped_ = false;
  principal_waits::ticket held_;
};

/// The sequence number after a reconnecting EventSource's `Last-Event-ID`,
/// or `from` when the header is absent.
caf::expected<std::int64_t> resume_point(const http::request& req,
                                         std::int64_t from) {
  auto last = req.header("last-event-id");
  if (last.empty()) return from;
  std::int64_t seq = 0;
  for (char c : last) {
    if (c < '0' || c > '9' || seq > (INT64_MAX - 9) / 10)
      return make_error(errc::invalid_argument,
                        "Last-Event-ID must be an event's sequence number, "
                        "got '"
                          + workflow::printable(last, 40) + "'");
    seq = seq * 10 + (c - '0');
  }
  return seq + 1;
}

void events_route(http::server& srv, engine_ptr engine,
                  principal_waits_ptr waits) {
  srv.route("GET", events_path,
            [engine, waits](const http::request& req, http::responder answer) {
              auto refuse = [&answer](const caf::error& err) {
                http::response res;
                send_error(res, err);
                answer.send(std::move(res));
              };
              query_params query{req};
              if (auto err = query.only({"from_seq", "follow"}))
                return refuse(err);
              auto follow = query.flag("follow");
              if (!follow) return refuse(follow.error());
              auto from = from_seq_of(query);
              if (!from) return refuse(from.error());
              const std::string& id = req.captures[0];
              if (!*follow) {
                http::response res;
                history_answer(*engine, id, *from, res);
                return answer.send(std::move(res));
              }
              auto resumed = resume_point(req, *from);
              if (!resumed) return refuse(resumed.error());
              http::response res;
              auto held = admit_wait(waits, req, res);
              if (!held) return answer.send(std::move(res));
              std::make_shared<event_follow>(id, answer, std::move(*held))
                ->start(*engine, *resumed);
            });
}

void read_routes(http::server& srv, engine_ptr engine,
                 std::vector<std::string> warnings, principal_waits_ptr waits) {
  get_route(srv, execution_path,
            [engine](const http::request& req, http::response& res) {
              if (auto err = query_params{req}.only({}))
                return send_error(res, err);
              // Read once: a scoped token's scope is checked on it (the
              // guard leaves this route to it).
              auto view = engine->describe(req.captures[0]);
              if (view)
                if (auto err = view_scope_refusal(req.principal, req.workflows,
                                                  *view))
                  return send_error(res, err);
              reply(res, view);
            });
  get_route(srv, history_path,
            [engine](const http::request& req, http::response& res) {
              query_params query{req};
              if (auto err = query.only({"from_seq"}))
                return send_error(res, err);
              auto from = from_seq_of(query);
              if (!from) return send_error(res, from.error());
              history_answer(*engine, req.captures[0], *from, res);
            });
  events_route(srv, engine, std::move(waits));
  get_route(srv, health_path,
            [engine, warnings](const http::request& req, http::response& res) {
              if (auto err = query_params{req}.only({}))
                return send_error(res, err);
              auto h = engine->health();
              json body{
                {"status", h.store_available ? "ok" : "unavailable"},
                {"store",
                 {{"available", h.store_available},
                  {"unavailable_since_ms", h.store_unavailable_since_ms},
                  {"error", h.store_error},
                  {"waiting", h.waiting},
                  {"outages", h.outages}}},
                {"warnings", warnings}};
              if (!h.store_available) res.set_header("Retry-After", "1");
              send_json(res, h.store_available ? 200 : 503, body);
            });
  get_route(srv, workflows_path,
            [engine](const http::request& req, http::response& res) {
              if (auto err = query_params{req}.only({}))
                return send_error(res, err);
              json items = json::array();
              for (auto& wf : engine->workflows())
                if (in_scope(req.workflows, wf.name))
                  items.push_back(message_to_json(to_proto(wf)));
              send_json(res, 200, {{"workflows", std::move(items)}});
            });
}

/// POST /v1/workflows/check-upgrade?file=NAME[&migrate=true&by=NAME] with
/// the new definition's text as the body.
void upgrade_route(http::server& srv, engine_ptr engine) {
  post_route(srv, upgrade_path,
             [engine](const http::request& req, const std::string& body,
                      http::response& res) {
               query_params query{req};
               if (auto err = query.only({"file", "migrate", "by"}))
                 return send_error(res, err);
               auto file = query.text("file", {}, workflow::text_rule::label);
               if (!file) return send_error(res, file.error());
               auto migrate = query.flag("migrate");
               if (!migrate) return send_error(res, migrate.error());
               auto by = query.text("by", {}, workflow::text_rule::label);
               if (!by) return send_error(res, by.error());
               auto slot = admit(body, res);
               if (!slot) return;
               auto report = *migrate ? engine->migrate(
                               body, *file, recorded_by(req.principal, *by))
                                      : engine->check_upgrade(body, *file);
               if (!report) return send_error(res, report.error());
               send_json(res, 200, message_to_json(to_proto(*report)));
             });
}

/// The `to` of a transfer's body: `{"to": "TOKEN_NAME"}`.
caf::expected<std::string> transfer_to(const std::string& text) {
  auto body = json::parse(text, nullptr, false);
  const char* shape = R"(body: must be a JSON object {"to": "TOKEN_NAME"})";
  if (body.is_discarded() || !body.is_object())
    return make_error(errc::invalid_argument, shape);
  for (auto& [key, value] : body.items())
    if (key != "to")
      return make_error(errc::invalid_argument, "body: unknown field '"
                                                  + workflow::printable(key, 40)
                                                  + "' (only \"to\")");
  auto to = body.find("to");
  if (to == body.end() || !to->is_string() || to->get<std::string>().empty())
    return make_error(errc::invalid_argument, shape);
  return to->get<std::string>();
}

/// GET and POST /v1/workflows/{name}/owner: who owns a workflow name, and
/// its transfer to another token's workers.
void owner_routes(http::server& srv, engine_ptr engine,
                  authenticator_ptr auth) {
  get_route(srv, owner_path,
            [engine](const http::request& req, http::response& res) {
              if (auto err = query_params{req}.only({}))
                return send_error(res, err);
              const auto& name = req.captures[0];
              if (auto err = scope_refusal(req.principal, req.workflows, name,
                                           "this request"))
                return send_error(res, err);
              auto view = engine->workflow_owner(name);
              if (!view) return send_error(res, view.error());
              send_json(res, 200, message_to_json(to_proto(*view)));
            });
  post_route(srv, owner_path,
             [engine, auth](const http::request& req, const std::string& text,
                            http::response& res) {
               if (auto err = query_params{req}.only({}))
                 return send_error(res, err);
               const auto& name = req.captures[0];
               if (auto err = scope_refusal(req.principal, req.workflows, name,
                                            "this request"))
                 return send_error(res, err);
               auto to = transfer_to(text);
               if (!to) return send_error(res, to.error());
               auth::verdict v;
               if (!req.principal.empty()) {
                 v.who.emplace();
                 v.who->name = req.principal;
               }
               auto view = transfer_workflow(auth, *engine, v, name, *to);
               if (!view) return send_error(res, view.error());
               send_json(res, 200, message_to_json(to_proto(*view)));
             });
}

/// A decision on execution `{id}` (approve, reject, cancel): no query
/// parameters, a decision body (`by` required when `require_by`), then
/// `decide` with who decides.
void decision_route(
  http::server& srv, const std::string& path, bool require_by,
  std::function<caf::expected<actors::execution_view>(
    const std::string& id, decision_body& body, const actors::operator_id& who)>
    decide) {
  post_route(srv, path,
             [require_by, decide = std::move(decide)](const http::request& req,
                                                      const std::string& text,
                                                      http::response& res) {
               if (auto err = query_params{req}.only({}))
                 return send_error(res, err);
               auto slot = admit(text, res);
               if (!slot) return;
               // With a token, who decides is its principal: a typed
               // `by` is not needed (it is recorded as a note beside it).
               auto body = decision_body::parse(
                 text, require_by && req.principal.empty());
               if (!body) return send_error(res, body.error());
               reply(res, decide(req.captures[0], *body,
                                 recorded_by(req.principal, body->by)));
             });
}

void decision_routes(http::server& srv, engine_ptr engine) {
  decision_route(srv, approve_path, true,
                 [engine](const std::string& id, decision_body& body,
                          const actors::operator_id& who) {
                   return engine->approve(id, who, body.data);
                 });
  decision_route(srv, reject_path, true,
                 [engine](const std::string& id, decision_body& body,
                          const actors::operator_id& who) {
                   return engine->reject(id, who, body.reason);
                 });
  decision_route(srv, cancel_path, false,
                 [engine](const std::string& id, decision_body& body,
                          actors::operator_id who) {
                   if (who.by.empty()) who.by = "anonymous";
                   return engine->cancel(id, who, body.reason);
                 });
}

/// A dead letter with the gRPC DeadLetter's field names; JSON texts nested.
json dead_letter_json(const actors::dead_letter_view& v) {
  auto nested = [](const std::string& text) {
    return text.empty() ? json{} : workflow::parse_json_text(text);
  };
  return {{"id", v.id},
          {"task_id", v.task_id},
          {"execution_id", v.execution_id},
          {"workflow", v.workflow},
          {"step", v.step},
          {"queue", v.queue},
          {"attempt", v.attempt},
          {"input", nested(v.input_json)},
          {"error",
           {{"kind", v.error_kind},
            {"message", v.error_message},
            {"details", nested(v.error_details_json)},
            {"retryable", v.error_retryable}}},
          {"failed_at_ms", v.failed_at_ms}};
}

void dead_letter_routes(http::server& srv, engine_ptr engine) {
  get_route(srv, dead_letters_path,
            [engine](const http::request& req, http::response& res) {
              query_params query{req};
              if (auto err = query.only({"page_size", "queue", "page_token"}))
                return send_error(res, err);
              auto page_size = query.integer("page_size", 0);
              if (!page_size) return send_error(res, page_size.error());
              if (auto err = check_given_page_size(query, *page_size))
                return send_error(res, err);
              auto queue = query.text("queue");
              if (!queue) return send_error(res, queue.error());
              auto token = query.text("page_token", {},
                                      workflow::text_rule::name, 4096);
              if (!token) return send_error(res, token.error());
              auto listed = engine->dead_letters(
                *queue, static_cast<std::size_t>(*page_size), *token);
              if (!listed) return send_error(res, listed.error());
              json items = json::array();
              for (auto& v : listed->items)
                if (in_scope(req.workflows, v.workflow))
                  items.push_back(dead_letter_json(v));
              send_json(res, 200,
                        {{"dead_letters", std::move(items)},
                         {"next_page_token", listed->next_page_token}});
            });
  post_route(srv, retry_path,
             [engine](const http::request& req, const std::string& text,
                      http::response& res) {
               if (auto err = query_params{req}.only({}))
                 return send_error(res, err);
               auto body = decision_body::parse(text, req.principal.empty());
               if (!body) return send_error(res, body.error());
               auto id = std::stoll(req.captures[0]);
               reply(res, engine->retry_dead_letter(
                            id, recorded_by(req.principal, body->by)));
             });
}

/// The label of a route in the request metrics: the route in the docs'
/// notation (ids do not make a series each); "unmatched" when no route
/// took the request.
class route_labels {
 public:
  route_labels() {
    add(start_path, "/v1/workflows/{name}/executions");
    add(owner_path, "/v1/workflows/{name}/owner");
    add(execution_path, "/v1/executions/{id}");
    add(history_path, "/v1/executions/{id}/history");
    add(events_path, "/v1/executions/{id}/events");
    add(approve_path, "/v1/executions/{id}/approve");
    add(reject_path, "/v1/executions/{id}/reject");
    add(cancel_path, "/v1/executions/{id}/cancel");
    add(retry_path, "/v1/dead-letters/{id}/retry");
  }

  /// `pattern`: the route's pattern as the server was given it.
  const std::string& of(const std::string& pattern) const {
    if (pattern.empty()) return unmatched_;
    auto i = table_.find(pattern);
    return i == table_.end() ? pattern : i->second;
  }

 private:
  void add(const char* pattern, std::string label) {
    table_.emplace(pattern, std::move(label));
  }
  std::map<std::string, std::string> table_;
  std::string unmatched_ = "unmatched";
};

/// Counts every answer in the node's metrics (api http, its route and
/// status) and serves GET /metrics.
void metrics_route(http::server& srv, engine_ptr engine) {
  auto labels = std::make_shared<const route_labels>();
  srv.observe(
    [engine, labels](const std::string& route, int status, double seconds) {
      engine->metrics().request("http", labels->of(route),
                                std::to_string(status), seconds);
    });
  get_route(srv, metrics_path,
            [engine](const http::request& req, http::response& res) {
              if (auto err = query_params{req}.only({}))
                return send_error(res, err);
              res.status = 200;
              res.content_type = "text/plain; version=0.0.4; charset=utf-8";
              res.body = engine->metrics_text();
            });
}

/// Why a principal scoped to `req.workflows` may not take `route` (one
/// that names an execution or a dead letter), or nothing.
caf::error route_scope_refusal(actors::engine_api& engine,
                               const std::string& route,
                               const http::request& req) {
  if (req.workflows.empty() || req.captures.empty()) return {};
  const auto& id = req.captures[0];
  if (route == retry_path)
    return dead_letter_scope_refusal(engine, req.principal, req.workflows,
                                     std::stoll(id));
  // GET execution_path checks its own describe (read_routes).
  for (const char* path :
       {history_path, events_path, approve_path, reject_path, cancel_path})
    if (route == path)
      return execution_scope_refusal(engine, req.principal, req.workflows, id);
  return {};
}

/// Checks every request against the permission table (src/auth) by its
/// route's label; the workflow a start names is the scope, and so is the
/// workflow of the execution or dead letter a route names.
void guard_routes(http::server& srv, authenticator_ptr auth,
                  engine_ptr engine) {
  if (!auth) return;
  auto labels = std::make_shared<const route_labels>();
  srv.check_with([auth, labels,
                  engine](const std::string& route,
                          http::request& req) -> std::optional<http::response> {
    auto name = req.method + " " + labels->of(route);
    if (req.method == "HEAD") name = "GET " + labels->of(route);
    auth::request_scope scope;
    if (route == start_path && !req.captures.empty())
      scope.workflow = req.captures[0];
    auto authorization = req.header("authorization");
    auto token = auth::bearer_token(authorization);
    auto v = auth->check("http", name,
                         auth::presented{token, req.client_subject}, scope);
    http::response res;
    if (v.ok()) {
      if (!v.who) return std::nullopt;
      req.principal = v.who->name;
      req.workflows = v.who->workflows;
      auto err = route_scope_refusal(*engine, route, req);
      if (!err) return std::nullopt;
      send_error(res, err);
      return res;
    }
    send_error(res, refusal(v));
    if (v.result == auth::verdict::outcome::unauthenticated)
      res.set_header("WWW-Authenticate", "Bearer");
    return res;
  });
}

} // namespace

std::unique_ptr<http::server> make_http_api(engine_ptr engine,
                                            const http_options& opts) {
  auto server_opts = opts.server;
  server_opts.max_body_bytes = opts.max_body_bytes;
  server_opts.large_body_bytes = large_request_bytes;
  auto srv = std::make_unique<http::server>(server_opts);
  http::response stopping;
  send_error(stopping,
             make_error(errc::unavailable,
                        "the node is stopping: the wait was abandoned (the "
                        "execution goes on; ask for it again)"));
  srv->on_stop(std::move(stopping));
  guard_routes(*srv, opts.auth, engine);
  metrics_route(*srv, engine);
  start_route(*srv, engine, opts.waits);
  list_route(*srv, engine);
  read_routes(*srv, engine, opts.warnings, opts.waits);
  decision_routes(*srv, engine);
  upgrade_route(*srv, engine);
  owner_routes(*srv, engine, opts.auth);
  dead_letter_routes(*srv, std::move(engine));
  return srv;
}

} // namespace cerebelum::api
