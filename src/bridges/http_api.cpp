#include "src/bridges/http_api.hpp"

#include <httplib.h>

#include <functional>
#include <optional>
#include <regex>

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

/// The API's paths (regular expressions, as httplib takes them).
constexpr const char* start_path = R"(/v1/workflows/([^/]+)/executions)";
constexpr const char* list_path = "/v1/executions";
constexpr const char* execution_path = R"(/v1/executions/([^/]+))";
constexpr const char* history_path = R"(/v1/executions/([^/]+)/history)";
constexpr const char* health_path = "/v1/health";
constexpr const char* workflows_path = "/v1/workflows";
constexpr const char* upgrade_path = "/v1/workflows/check-upgrade";
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
                                          httplib::Response& res) {
  auto slot = request_gate::shared().admit(body.size());
  if (!slot)
    send_error(res, 503, "unavailable",
               "too many large requests in flight; retry later");
  return slot;
}

/// Replies with the execution or the error.
void reply(httplib::Response& res,
           const caf::expected<actors::execution_view>& view) {
  if (!view) return send_error(res, view.error());
  send_json(res, 200, view_json(*view));
}

void start_route(httplib::Server& srv, engine_ptr engine,
                 const http_options& opts) {
  auto stopping = opts.stopping;
  post_route(
    srv, start_path, opts.max_body_bytes,
    [engine, stopping](const httplib::Request& req, const std::string& body,
                       httplib::Response& res) {
      std::string workflow = req.matches[1];
      if (auto err = check_path_value("workflow", workflow))
        return send_error(res, err);
      query_params query{req};
      if (auto err = query.only({"wait", "timeout_ms", "id", "by", "version"}))
        return send_error(res, err);
      auto wait = query.flag("wait");
      if (!wait) return send_error(res, wait.error());
      auto timeout = query.integer("timeout_ms", 0);
      if (!timeout) return send_error(res, timeout.error());
      if (*timeout < 0 || *timeout > max_wait.count())
        return send_error(
          res, make_error(errc::invalid_argument,
                          "timeout_ms: must be between 0 (the maximum) and "
                            + std::to_string(max_wait.count()) + ", got "
                            + std::to_string(*timeout)));
      auto id = query.text("id");
      if (!id) return send_error(res, id.error());
      if (auto err = check_new_execution_id(*id)) return send_error(res, err);
      auto by = query.text("by", "http", workflow::text_rule::label);
      if (!by) return send_error(res, by.error());
      auto version = query.text("version");
      if (!version) return send_error(res, version.error());
      auto version_hash = parse_version(*version);
      if (!version_hash) return send_error(res, version_hash.error());
      auto slot = admit(body, res);
      if (!slot) return;
      auto input = parse_json_field("body", body, json::object(), true);
      if (!input) return send_error(res, input.error());
      actors::start_request sreq;
      sreq.workflow = std::move(workflow);
      sreq.input = std::move(*input);
      sreq.execution_id = std::move(*id);
      sreq.started_by = std::move(*by);
      sreq.version = *version_hash;
      auto started = engine->start(sreq);
      // A waiting start holds no slot: the input is recorded by now.
      sreq.input = nullptr;
      slot.reset();
      if (!started) return send_error(res, started.error());
      auto view = started->execution;
      if (*wait) {
        auto done = wait_for_result(*engine, view.execution_id,
                                    std::chrono::milliseconds{*timeout},
                                    [stopping] {
                                      return stopping && stopping->load();
                                    });
        if (!done) return send_error(res, done.error());
        view = std::move(*done);
      }
      send_json(res, started->created ? 201 : 200,
                {{"created", started->created},
                 {"execution", view_json(view)}});
    });
}

void list_route(httplib::Server& srv, engine_ptr engine) {
  srv.Get(list_path, [engine](const httplib::Request& req,
                              httplib::Response& res) {
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
    auto token = query.text("page_token", {}, workflow::text_rule::name, 4096);
    if (!token) return send_error(res, token.error());
    auto stuck = query.flag("stuck");
    if (!stuck) return send_error(res, stuck.error());
    actors::list_request lreq;
    lreq.stuck = *stuck;
    lreq.status = *status;
    if (query.has("workflow")) lreq.workflow = std::move(*workflow);
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

void read_routes(httplib::Server& srv, engine_ptr engine) {
  srv.Get(execution_path,
          [engine](const httplib::Request& req, httplib::Response& res) {
            if (auto err = query_params{req}.only({}))
              return send_error(res, err);
            reply(res, engine->describe(req.matches[1]));
          });
  srv.Get(history_path, [engine](const httplib::Request& req,
                                 httplib::Response& res) {
    query_params query{req};
    if (auto err = query.only({"from_seq"})) return send_error(res, err);
    auto from = query.integer("from_seq", 0);
    if (!from) return send_error(res, from.error());
    if (*from < 0)
      return send_error(res, make_error(errc::invalid_argument,
                                        "from_seq: must not be negative"));
    std::string id = req.matches[1];
    auto events = engine->history(id, *from);
    if (!events) return send_error(res, events.error());
    json items = json::array();
    for (auto& ev : *events)
      items.push_back(event_to_json(ev));
    send_json(res, 200, {{"execution_id", id}, {"events", std::move(items)}});
  });
  srv.Get(health_path,
          [engine](const httplib::Request& req, httplib::Response& res) {
            if (auto err = query_params{req}.only({}))
              return send_error(res, err);
            auto h = engine->health();
            json body{{"status", h.store_available ? "ok" : "unavailable"},
                      {"store",
                       {{"available", h.store_available},
                        {"unavailable_since_ms", h.store_unavailable_since_ms},
                        {"error", h.store_error},
                        {"waiting", h.waiting},
                        {"outages", h.outages}}}};
            if (!h.store_available) res.set_header("Retry-After", "1");
            send_json(res, h.store_available ? 200 : 503, body);
          });
  srv.Get(workflows_path,
          [engine](const httplib::Request& req, httplib::Response& res) {
            if (auto err = query_params{req}.only({}))
              return send_error(res, err);
            json items = json::array();
            for (auto& wf : engine->workflows())
              items.push_back(message_to_json(to_proto(wf)));
            send_json(res, 200, {{"workflows", std::move(items)}});
          });
}

/// POST /v1/workflows/check-upgrade?file=NAME[&migrate=true&by=NAME] with
/// the new definition's text as the body.
void upgrade_route(httplib::Server& srv, engine_ptr engine,
                   std::size_t max_body) {
  post_route(srv, upgrade_path, max_body,
             [engine](const httplib::Request& req, const std::string& body,
                      httplib::Response& res) {
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
               auto report = *migrate ? engine->migrate(body, *file, *by)
                                      : engine->check_upgrade(body, *file);
               if (!report) return send_error(res, report.error());
               send_json(res, 200, message_to_json(to_proto(*report)));
             });
}

/// A decision on execution `{id}` (approve, reject, cancel): no query
/// parameters, a decision body (`by` required when `require_by`), then
/// `decide`.
void decision_route(httplib::Server& srv, const std::string& path,
                    std::size_t max_body, bool require_by,
                    std::function<caf::expected<actors::execution_view>(
                      const std::string& id, decision_body& body)>
                      decide) {
  post_route(srv, path, max_body,
             [require_by, decide = std::move(decide)](
               const httplib::Request& req, const std::string& text,
               httplib::Response& res) {
               if (auto err = query_params{req}.only({}))
                 return send_error(res, err);
               auto slot = admit(text, res);
               if (!slot) return;
               auto body = decision_body::parse(text, require_by);
               if (!body) return send_error(res, body.error());
               reply(res, decide(req.matches[1], *body));
             });
}

void decision_routes(httplib::Server& srv, engine_ptr engine,
                     std::size_t max_body) {
  decision_route(srv, approve_path, max_body, true,
                 [engine](const std::string& id, decision_body& body) {
                   return engine->approve(id, body.by, body.data);
                 });
  decision_route(srv, reject_path, max_body, true,
                 [engine](const std::string& id, decision_body& body) {
                   return engine->reject(id, body.by, body.reason);
                 });
  decision_route(srv, cancel_path, max_body, false,
                 [engine](const std::string& id, decision_body& body) {
                   auto by = body.by.empty() ? std::string{"anonymous"}
                                             : body.by;
                   return engine->cancel(id, by, body.reason);
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

void dead_letter_routes(httplib::Server& srv, engine_ptr engine,
                        std::size_t max_body) {
  srv.Get(dead_letters_path, [engine](const httplib::Request& req,
                                      httplib::Response& res) {
    query_params query{req};
    if (auto err = query.only({"page_size", "queue", "page_token"}))
      return send_error(res, err);
    auto page_size = query.integer("page_size", 0);
    if (!page_size) return send_error(res, page_size.error());
    if (auto err = check_given_page_size(query, *page_size))
      return send_error(res, err);
    auto queue = query.text("queue");
    if (!queue) return send_error(res, queue.error());
    auto token = query.text("page_token", {}, workflow::text_rule::name, 4096);
    if (!token) return send_error(res, token.error());
    auto listed = engine->dead_letters(
      *queue, static_cast<std::size_t>(*page_size), *token);
    if (!listed) return send_error(res, listed.error());
    json items = json::array();
    for (auto& v : listed->items)
      items.push_back(dead_letter_json(v));
    send_json(res, 200,
              {{"dead_letters", std::move(items)},
               {"next_page_token", listed->next_page_token}});
  });
  post_route(srv, retry_path, max_body,
             [engine](const httplib::Request& req, const std::string& text,
                      httplib::Response& res) {
               if (auto err = query_params{req}.only({}))
                 return send_error(res, err);
               auto body = decision_body::parse(text, true);
               if (!body) return send_error(res, body.error());
               auto id = std::stoll(std::string{req.matches[1]});
               reply(res, engine->retry_dead_letter(id, body->by));
             });
}

/// The label of a request's path in the request metrics: its route in the
/// docs' notation, so that ids do not make a series each.
class route_labels {
 public:
  route_labels() {
    add(start_path, "/v1/workflows/{name}/executions");
    add(list_path, list_path);
    add(execution_path, "/v1/executions/{id}");
    add(history_path, "/v1/executions/{id}/history");
    add(health_path, health_path);
    add(workflows_path, workflows_path);
    add(upgrade_path, upgrade_path);
    add(approve_path, "/v1/executions/{id}/approve");
    add(reject_path, "/v1/executions/{id}/reject");
    add(cancel_path, "/v1/executions/{id}/cancel");
    add(dead_letters_path, dead_letters_path);
    add(retry_path, "/v1/dead-letters/{id}/retry");
    add(metrics_path, metrics_path);
  }

  const std::string& of(const std::string& path) const {
    for (const auto& [re, label] : table_)
      if (std::regex_match(path, re)) return label;
    return unmatched_;
  }

 private:
  void add(const char* pattern, std::string label) {
    table_.emplace_back(std::regex{pattern}, std::move(label));
  }
  std::vector<std::pair<std::regex, std::string>> table_;
  std::string unmatched_ = "unmatched";
};

/// Counts every request in the node's metrics (api http, its route and
/// status) and serves GET /metrics. httplib runs a request's pre-routing
/// handler, route and logger on one thread: the start time is per thread.
void metrics_route(httplib::Server& srv, engine_ptr engine) {
  static thread_local std::optional<actors::stopwatch> began;
  srv.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    began.emplace();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  auto labels = std::make_shared<const route_labels>();
  srv.set_logger([engine, labels](const httplib::Request& req,
                                  const httplib::Response& res) {
    engine->metrics().request("http", labels->of(req.path),
                              std::to_string(res.status),
                              began ? began->seconds() : 0.0);
    began.reset();
  });
  srv.Get(metrics_path,
          [engine](const httplib::Request& req, httplib::Response& res) {
            if (auto err = query_params{req}.only({}))
              return send_error(res, err);
            res.status = 200;
            res.set_content(engine->metrics_text(),
                            "text/plain; version=0.0.4; charset=utf-8");
          });
}

} // namespace

void install_http_api(httplib::Server& server, engine_ptr engine,
                      const http_options& opts) {
  server.set_payload_max_length(opts.max_body_bytes);
  install_error_handlers(server, opts.max_body_bytes,
                         {{start_path, "POST"},
                          {list_path, "GET"},
                          {execution_path, "GET"},
                          {history_path, "GET"},
                          {health_path, "GET"},
                          {workflows_path, "GET"},
                          {upgrade_path, "POST"},
                          {approve_path, "POST"},
                          {reject_path, "POST"},
                          {cancel_path, "POST"},
                          {dead_letters_path, "GET"},
                          {retry_path, "POST"},
                          {metrics_path, "GET"}});
  metrics_route(server, engine);
  start_route(server, engine, opts);
  list_route(server, engine);
  read_routes(server, engine);
  decision_routes(server, engine, opts.max_body_bytes);
  upgrade_route(server, engine, opts.max_body_bytes);
  dead_letter_routes(server, std::move(engine), opts.max_body_bytes);
}

} // namespace cerebelum::api
