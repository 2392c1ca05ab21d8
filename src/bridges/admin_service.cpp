#include "src/bridges/admin_service.hpp"

#include "eventstore/event_store.hpp"
#include "src/auth/cert_subject.hpp"
#include "src/bridges/auth_gate.hpp"
#include "src/bridges/error_mapping.hpp"
#include "src/bridges/proto_convert.hpp"
#include "src/bridges/request_checks.hpp"
#include "src/bridges/request_gate.hpp"
#include "src/bridges/worker_convert.hpp"
#include "workflow/safe_text.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <variant>

namespace cerebelum::api {

namespace {

/// Fills `res` from `view` or maps the error.
grpc::Status reply(const caf::expected<actors::execution_view>& view,
                   admin::ExecutionInfo* res) {
  if (!view) return to_status(view.error());
  *res = to_proto(*view);
  return grpc::Status::OK;
}

} // namespace

/// The answer to a large request that found no free slot in time.
grpc::Status busy() {
  return {grpc::StatusCode::UNAVAILABLE,
          "too many large requests in flight; retry later"};
}

grpc::Status to_status(const caf::error& err) {
  auto code = actors::api_error_code(err);
  auto message = actors::api_error_message(err);
  // INVALID_ARGUMENT also means a malformed request: the prefix tells a
  // client that the size is what to change.
  if (code == actors::errc::payload_too_large)
    message = "payload_too_large: " + message;
  return {static_cast<grpc::StatusCode>(grpc_code_of(code)),
          std::move(message)};
}

admin_service::admin_service(std::shared_ptr<actors::engine_api> engine,
                             actors::task_api_ptr tasks, authenticator_ptr auth,
                             std::vector<std::string> warnings,
                             principal_waits_ptr waits)
  : engine_(std::move(engine)),
    tasks_(std::move(tasks)),
    auth_(std::move(auth)),
    warnings_(std::move(warnings)),
    waits_(std::move(waits)) {
  // nop
}

grpc::Status
admin_service::DescribeExecution(grpc::ServerContext* ctx,
                                 const admin::DescribeExecutionRequest* req,
                                 admin::ExecutionInfo* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/DescribeExecution");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (auto err = require_non_empty("execution_id", req->execution_id()))
    return to_status(err);
  // The execution is read once: its scope is checked on what describe read.
  auto view = engine_->describe(req->execution_id());
  if (view)
    if (auto err = view_scope_refusal(name_of(allowed), scope_of(allowed),
                                      *view))
      return to_status(err);
  return reply(view, res);
}

grpc::Status
admin_service::ListExecutions(grpc::ServerContext* ctx,
                              const admin::ListExecutionsRequest* req,
                              admin::ListExecutionsResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/ListExecutions");
  if (!allowed.ok()) return to_status(refusal(allowed));
  auto status = parse_status_filter(req->status());
  if (!status) return to_status(status.error());
  if (auto err = check_page_size(req->page_size())) return to_status(err);
  actors::list_request lreq;
  lreq.status = *status;
  std::optional<std::string> asked;
  if (!req->workflow().empty()) asked = req->workflow();
  auto filter = scoped_filter(name_of(allowed), scope_of(allowed), asked);
  if (!filter) return to_status(filter.error());
  lreq.workflow = std::move(*filter);
  if (req->created_from_ms() != 0)
    lreq.created_from_ms = req->created_from_ms();
  if (req->created_to_ms() != 0) lreq.created_to_ms = req->created_to_ms();
  lreq.page_size = req->page_size();
  lreq.page_token = req->page_token();
  lreq.stuck = req->stuck();
  auto listed = engine_->list(lreq);
  if (!listed) return to_status(listed.error());
  for (auto& view : listed->executions)
    *res->add_executions() = to_proto(view);
  res->set_next_page_token(listed->next_page_token);
  return grpc::Status::OK;
}

grpc::Status admin_service::GetHistory(grpc::ServerContext* ctx,
                                       const admin::GetHistoryRequest* req,
                                       admin::GetHistoryResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/GetHistory");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (auto err = require_non_empty("execution_id", req->execution_id()))
    return to_status(err);
  if (auto err = execution_scope_refusal(
        *engine_, name_of(allowed), scope_of(allowed), req->execution_id()))
    return to_status(err);
  if (req->from_seq() < 0)
    return to_status(actors::make_error(actors::errc::invalid_argument,
                                        "from_seq: must not be negative"));
  auto events = engine_->history(req->execution_id(), req->from_seq());
  if (!events) return to_status(events.error());
  for (auto& ev : *events)
    *res->add_events() = std::move(ev);
  return grpc::Status::OK;
}

grpc::Status admin_service::Approve(grpc::ServerContext* ctx,
                                    const admin::ApproveRequest* req,
                                    admin::ExecutionInfo* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/Approve");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (auto err = require_non_empty("execution_id", req->execution_id()))
    return to_status(err);
  if (auto err = execution_scope_refusal(
        *engine_, name_of(allowed), scope_of(allowed), req->execution_id()))
    return to_status(err);
  // With a principal, a typed `by` is only a note beside it.
  if (!allowed.who)
    if (auto err = require_non_empty("by", req->by())) return to_status(err);
  auto slot = request_gate::shared().admit(req->data_json().size());
  if (!slot) return busy();
  auto data = parse_json_field("data_json", req->data_json(), actors::json{},
                               false);
  if (!data) return to_status(data.error());
  return reply(engine_->approve(req->execution_id(),
                                recorded_by(allowed, req->by()), *data),
               res);
}

grpc::Status admin_service::Reject(grpc::ServerContext* ctx,
                                   const admin::RejectRequest* req,
                                   admin::ExecutionInfo* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/Reject");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (auto err = require_non_empty("execution_id", req->execution_id()))
    return to_status(err);
  if (auto err = execution_scope_refusal(
        *engine_, name_of(allowed), scope_of(allowed), req->execution_id()))
    return to_status(err);
  // With a principal, a typed `by` is only a note beside it.
  if (!allowed.who)
    if (auto err = require_non_empty("by", req->by())) return to_status(err);
  return reply(engine_->reject(req->execution_id(),
                               recorded_by(allowed, req->by()), req->reason()),
               res);
}

grpc::Status admin_service::Cancel(grpc::ServerContext* ctx,
                                   const admin::CancelRequest* req,
                                   admin::ExecutionInfo* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/Cancel");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (auto err = require_non_empty("execution_id", req->execution_id()))
    return to_status(err);
  if (auto err = execution_scope_refusal(
        *engine_, name_of(allowed), scope_of(allowed), req->execution_id()))
    return to_status(err);
  auto who = recorded_by(allowed, req->by());
  if (who.by.empty()) who.by = "anonymous";
  return reply(engine_->cancel(req->execution_id(), who, req->reason()), res);
}

namespace {

/// One call the engine answers later (StartExecution, WaitForResult):
/// finished by the engine's answer or by the caller's cancellation,
/// whichever comes first; the other is ignored. It lives until both gRPC is
/// done with it and the engine has answered.
class late_reactor final : public grpc::ServerUnaryReactor,
                           public std::enable_shared_from_this<late_reactor> {
 public:
  /// Keeps the reactor alive until gRPC is done with the call.
  void hold() {
    self_ = shared_from_this();
  }

  /// Finishes the call with what `fill` returns (it writes the response),
  /// unless the call was cancelled first (then the response is not
  /// touched: gRPC may have let it go).
  void answer(const std::function<grpc::Status()>& fill) {
    if (claim()) Finish(fill());
  }

  void OnCancel() override {
    if (claim())
      Finish({grpc::StatusCode::CANCELLED,
              "the call was abandoned (client gone or node stopping)"});
  }

  void OnDone() override {
    self_.reset();
  }

 private:
  /// True for the first of answer and cancellation.
  bool claim() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (finished_) return false;
    finished_ = true;
    return true;
  }

  std::mutex mtx_;
  bool finished_ = false;
  std::shared_ptr<late_reactor> self_;
};

/// One FollowExecution stream: the follower's batches queue here and are
/// written one at a time (gRPC allows one write in flight); the stream
/// finishes once the follow ended and the queue is written, or when the
/// client goes away (the follow is stopped).
class follow_reactor final
  : public grpc::ServerWriteReactor<events::Event>,
    public std::enable_shared_from_this<follow_reactor> {
 public:
  /// Events a client may let wait unread before it is cut off.
  static constexpr std::size_t max_queued_bytes = 8 << 20;

  /// Keeps the reactor alive until gRPC is done with the call.
  void hold() {
    self_ = shared_from_this();
  }

  /// Counts the stream as a waiting request until gRPC is done with it.
  void set_ticket(principal_waits::ticket held) {
    std::lock_guard<std::mutex> guard{mtx_};
    held_ = std::move(held);
  }

  void set_stop(actors::follow_stop stop) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!done_) {
        stop_ = std::move(stop);
        return;
      }
    }
    stop();
  }

  /// Queues a batch; false once the stream is over (the follow stops).
  bool push(std::vector<events::Event> batch) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (done_ || ending_) return false;
    for (auto& ev : batch) {
      queued_bytes_ += ev.ByteSizeLong();
      queue_.push_back(std::move(ev));
    }
    if (queued_bytes_ > max_queued_bytes) {
      end_locked({grpc::StatusCode::RESOURCE_EXHAUSTED,
                  "the client left more than 8 MiB of events unread; "
                  "follow again from the last seq received + 1"});
      return false;
    }
    write_next_locked();
    return true;
  }

  /// The follow ended: finish once what is queued is written.
  void end(const caf::error& err) {
    std::lock_guard<std::mutex> guard{mtx_};
    end_locked(err ? to_status(err) : grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> guard{mtx_};
    writing_ = false;
    if (!queue_.empty()) {
      queued_bytes_ -= queue_.front().ByteSizeLong();
      queue_.pop_front();
    }
    if (!ok) {
      // The client is gone (or the call was cancelled).
      queue_.clear();
      return end_locked({grpc::StatusCode::CANCELLED, "the stream broke"});
    }
    write_next_locked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> guard{mtx_};
    queue_.clear();
    end_locked({grpc::StatusCode::CANCELLED,
                "the call was abandoned (client gone or node stopping)"});
  }

  void OnDone() override {
    actors::follow_stop stop;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      done_ = true;
      stop = std::move(stop_);
      held_.release();
    }
    if (stop) stop();
    self_.reset();
  }

 private:
  void write_next_locked() {
    if (writing_ || done_) return;
    if (queue_.empty()) {
      if (ending_) {
        done_ = true;
        Finish(status_);
      }
      return;
    }
    writing_ = true;
    // A deque keeps its elements in place as others are added.
    StartWrite(&queue_.front());
  }

  void end_locked(grpc::Status status) {
    if (ending_ || done_) return;
    ending_ = true;
    status_ = std::move(status);
    if (!status_.ok() && !queue_.empty() && writing_) {
      // Drop what waits behind the write in flight.
      queue_.erase(queue_.begin() + 1, queue_.end());
    }
    write_next_locked();
  }

  std::mutex mtx_;
  std::deque<events::Event> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool ending_ = false;
  bool done_ = false;
  grpc::Status status_;
  actors::follow_stop stop_;
  principal_waits::ticket held_;
  std::shared_ptr<follow_reactor> self_;
};

/// Finishes a callback call at once with `status`.
grpc::ServerUnaryReactor* finish_now(grpc::CallbackServerContext* ctx,
                                     const grpc::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

/// Counts a waiting call of `allowed`'s principal (`waits` null: none).
caf::expected<principal_waits::ticket>
admit_wait(const principal_waits_ptr& waits, const auth::verdict& allowed) {
  if (!waits || !allowed.who) return principal_waits::ticket{};
  return waits->admit(allowed.who->name);
}

} // namespace

grpc::ServerUnaryReactor*
admin_service::StartExecution(grpc::CallbackServerContext* ctx,
                              const admin::StartExecutionRequest* req,
                              admin::StartExecutionResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/StartExecution",
                            {req->workflow(), {}});
  if (!allowed.ok()) return finish_now(ctx, to_status(refusal(allowed)));
  if (auto err = require_non_empty("workflow", req->workflow()))
    return finish_now(ctx, to_status(err));
  // The same ids as over HTTP: one that GET /v1/executions/{id} could not
  // address is refused (an empty one is generated).
  if (!req->execution_id().empty())
    if (auto err = check_new_execution_id(req->execution_id()))
      return finish_now(ctx, to_status(err));
  auto slot = request_gate::shared().admit(req->input_json().size());
  if (!slot) return finish_now(ctx, busy());
  auto input = parse_json_field("input_json", req->input_json(),
                                actors::json::object(), true);
  if (!input) return finish_now(ctx, to_status(input.error()));
  actors::start_request sreq;
  sreq.workflow = req->workflow();
  sreq.input = std::move(*input);
  sreq.execution_id = req->execution_id();
  auto who = recorded_by(allowed, req->started_by());
  sreq.started_by = std::move(who.by);
  sreq.started_by_note = std::move(who.note);
  sreq.version = req->version();
  auto reactor = std::make_shared<late_reactor>();
  reactor->hold();
  // The gate's slot is held until the start is answered.
  auto held = std::make_shared<request_gate::ticket>(std::move(*slot));
  engine_->start_async(
    sreq, [reactor, res, held](caf::expected<actors::start_response> started) {
      reactor->answer([&] {
        if (!started) return to_status(started.error());
        *res->mutable_execution() = to_proto(started->execution);
        res->set_created(started->created);
        return grpc::Status::OK;
      });
    });
  return reactor.get();
}

grpc::ServerUnaryReactor*
admin_service::WaitForResult(grpc::CallbackServerContext* ctx,
                             const admin::WaitForResultRequest* req,
                             admin::ExecutionInfo* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/WaitForResult");
  if (!allowed.ok()) return finish_now(ctx, to_status(refusal(allowed)));
  if (auto err = require_non_empty("execution_id", req->execution_id()))
    return finish_now(ctx, to_status(err));
  if (auto err = execution_scope_refusal(
        *engine_, name_of(allowed), scope_of(allowed), req->execution_id()))
    return finish_now(ctx, to_status(err));
  auto timeout = wait_limit(std::chrono::milliseconds{req->timeout_ms()});
  auto counted = admit_wait(waits_, allowed);
  if (!counted) return finish_now(ctx, to_status(counted.error()));
  auto reactor = std::make_shared<late_reactor>();
  reactor->hold();
  // Counted until the engine's wait ends, also after a cancellation: the
  // engine holds the wait until its end or timeout.
  auto held = std::make_shared<principal_waits::ticket>(std::move(*counted));
  engine_->wait_async(req->execution_id(), timeout,
                      [reactor, res,
                       held](caf::expected<actors::execution_view> r) {
                        held->release();
                        reactor->answer([&] {
                          return reply(r, res);
                        });
                      });
  return reactor.get();
}

grpc::ServerWriteReactor<events::Event>*
admin_service::FollowExecution(grpc::CallbackServerContext* ctx,
                               const admin::FollowExecutionRequest* req) {
  auto reactor = std::make_shared<follow_reactor>();
  reactor->hold();
  auto allowed = check_call(auth_, ctx, "AdminService/FollowExecution");
  if (!allowed.ok()) {
    reactor->end(refusal(allowed));
    return reactor.get();
  }
  if (auto err = require_non_empty("execution_id", req->execution_id())) {
    reactor->end(err);
    return reactor.get();
  }
  if (auto err = execution_scope_refusal(
        *engine_, name_of(allowed), scope_of(allowed), req->execution_id())) {
    reactor->end(err);
    return reactor.get();
  }
  if (req->from_seq() < 0) {
    reactor->end(actors::make_error(actors::errc::invalid_argument,
                                    "from_seq: must not be negative"));
    return reactor.get();
  }
  auto counted = admit_wait(waits_, allowed);
  if (!counted) {
    reactor->end(counted.error());
    return reactor.get();
  }
  reactor->set_ticket(std::move(*counted));
  actors::follow_sink sink;
  sink.events = [reactor](std::vector<events::Event> batch) {
    return reactor->push(std::move(batch));
  };
  sink.end = [reactor](caf::error err) {
    reactor->end(err);
  };
  reactor->set_stop(
    engine_->follow(req->execution_id(), req->from_seq(), std::move(sink)));
  return reactor.get();
}

grpc::Status admin_service::ListWorkflows(grpc::ServerContext* ctx,
                                          const admin::ListWorkflowsRequest*,
                                          admin::ListWorkflowsResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/ListWorkflows");
  if (!allowed.ok()) return to_status(refusal(allowed));
  for (auto& wf : engine_->workflows())
    if (in_scope(scope_of(allowed), wf.name))
      *res->add_workflows() = to_proto(wf);
  return grpc::Status::OK;
}

grpc::Status admin_service::Health(grpc::ServerContext*,
                                   const admin::HealthRequest*,
                                   admin::HealthResponse* res) {
  auto h = engine_->health();
  res->set_store_available(h.store_available);
  res->set_store_unavailable_since_ms(h.store_unavailable_since_ms);
  res->set_store_error(h.store_error);
  res->set_waiting(h.waiting);
  res->set_outages(h.outages);
  for (const auto& w : warnings_)
    res->add_warnings(w);
  return grpc::Status::OK;
}

grpc::Status admin_service::CheckUpgrade(grpc::ServerContext* ctx,
                                         const admin::CheckUpgradeRequest* req,
                                         admin::CheckUpgradeResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/CheckUpgrade");
  if (!allowed.ok()) return to_status(refusal(allowed));
  auto report = req->migrate()
                  ? engine_->migrate(req->definition(), req->file(),
                                     recorded_by(allowed, req->by()))
                  : engine_->check_upgrade(req->definition(), req->file());
  if (!report) return to_status(report.error());
  *res = to_proto(*report);
  return grpc::Status::OK;
}

namespace {

/// Waits (up to a minute) for a task API callback.
template <class T>
std::optional<actors::task_result<T>>
await_task(const std::function<void(actors::task_api::callback<T>)>& call) {
  struct shared {
    std::mutex mtx;
    std::condition_variable cv;
    std::optional<actors::task_result<T>> res;
  };
  auto st = std::make_shared<shared>();
  call([st](actors::task_result<T> r) {
    std::lock_guard<std::mutex> guard{st->mtx};
    st->res = std::move(r);
    st->cv.notify_all();
  });
  std::unique_lock<std::mutex> guard{st->mtx};
  st->cv.wait_for(guard, std::chrono::seconds{60}, [&] {
    return st->res.has_value();
  });
  return std::move(st->res);
}

} // namespace

grpc::Status
admin_service::ListDeadLetters(grpc::ServerContext* ctx,
                               const admin::ListDeadLettersRequest* req,
                               admin::ListDeadLettersResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/ListDeadLetters");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (!tasks_)
    return {grpc::StatusCode::UNIMPLEMENTED, "this node has no task router"};
  if (req->page_size() > 1000)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "page_size is " + std::to_string(req->page_size())
              + ", at most 1000"};
  auto r = await_task<actors::dead_letter_list>(
    [&](actors::task_api::callback<actors::dead_letter_list> cb) {
      tasks_->list_dead_letters(req->queue(), req->page_size(),
                                req->page_token(), std::move(cb));
    });
  if (!r) return {grpc::StatusCode::UNAVAILABLE, "the node did not answer"};
  if (r->error) return to_status(*r->error);
  for (auto& v : r->value->items) {
    if (!in_scope(scope_of(allowed), v.workflow)) continue;
    auto* d = res->add_dead_letters();
    d->set_id(v.id);
    d->set_task_id(v.task_id);
    d->set_execution_id(v.execution_id);
    d->set_workflow(v.workflow);
    d->set_step(v.step);
    d->set_queue(v.queue);
    d->set_attempt(v.attempt);
    d->set_input_json(v.input_json);
    d->mutable_error()->set_kind(v.error_kind);
    d->mutable_error()->set_message(v.error_message);
    d->mutable_error()->set_details_json(v.error_details_json);
    d->mutable_error()->set_retryable(v.error_retryable);
    d->set_failed_at_ms(v.failed_at_ms);
  }
  res->set_next_page_token(r->value->next_page_token);
  return grpc::Status::OK;
}

grpc::Status
admin_service::RetryDeadLetter(grpc::ServerContext* ctx,
                               const admin::RetryDeadLetterRequest* req,
                               admin::ExecutionInfo* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/RetryDeadLetter");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (!tasks_)
    return {grpc::StatusCode::UNIMPLEMENTED, "this node has no task router"};
  // With a principal, a typed `by` is only a note beside it.
  if (!allowed.who)
    if (auto err = require_non_empty("by", req->by())) return to_status(err);
  if (auto err = dead_letter_scope_refusal(*engine_, name_of(allowed),
                                           scope_of(allowed), req->id()))
    return to_status(err);
  auto r
    = await_task<std::string>([&](actors::task_api::callback<std::string> cb) {
        tasks_->retry_dead_letter(req->id(), recorded_by(allowed, req->by()),
                                  std::move(cb));
      });
  if (!r) return {grpc::StatusCode::UNAVAILABLE, "the node did not answer"};
  if (r->error) return to_status(*r->error);
  return reply(engine_->describe(*r->value), res);
}

namespace {

/// A token's name, queue or workflow: a non-empty name without spaces.
caf::error check_label(const char* field, const std::string& value) {
  if (value.empty())
    return actors::make_error(actors::errc::invalid_argument,
                              std::string{field} + " is empty");
  if (auto why = workflow::check_text(field, value, workflow::max_name_bytes,
                                      workflow::text_rule::name))
    return actors::make_error(actors::errc::invalid_argument, *why);
  return {};
}

void fill(admin::TokenInfo* out, const eventstore::token_row& row) {
  out->set_id(row.id);
  out->set_name(row.name);
  out->set_role(row.role);
  for (const auto& q : row.queues)
    out->add_queues(q);
  for (const auto& w : row.workflows)
    out->add_workflows(w);
  out->set_created_at_ms(row.created_at_ms);
  out->set_expires_at_ms(row.expires_at_ms);
  out->set_revoked_at_ms(row.revoked_at_ms);
  out->set_last_used_ms(row.last_used_ms);
  out->set_cert_subject(row.cert_subject);
}

grpc::Status store_status(const eventstore::error& err) {
  return {err.retryable ? grpc::StatusCode::UNAVAILABLE
                        : grpc::StatusCode::FAILED_PRECONDITION,
          "the store refused: " + err.message};
}

/// The normal form of `text`, or INVALID_ARGUMENT; FAILED_PRECONDITION
/// while a live principal is bound to it (two would make it ambiguous).
std::variant<std::string, grpc::Status>
free_subject(eventstore::event_store& store, const std::string& text,
             std::int64_t now) {
  auto subject = auth::normalize_subject(text);
  if (!subject)
    return grpc::Status{
      grpc::StatusCode::INVALID_ARGUMENT,
      "cert_subject: expected an RFC 2253 subject such as "
      "'CN=ci-runner,O=Example' (openssl x509 -noout -subject -nameopt "
      "RFC2253), got '"
        + workflow::printable(text, 200) + "'"};
  auto rows = store.list_tokens();
  if (!rows) return store_status(rows.err());
  for (const auto& r : *rows)
    if (r.cert_subject == *subject && r.revoked_at_ms == 0
        && (r.expires_at_ms == 0 || r.expires_at_ms > now))
      return grpc::Status{grpc::StatusCode::FAILED_PRECONDITION,
                          "principal " + r.id + " ('" + r.name
                            + "') is bound to '" + *subject
                            + "' already: revoke it first"};
  return std::move(*subject);
}

} // namespace

/// The token RPCs need an authenticator (a node with --auth token) and an
/// open store; the answer when one is missing, else nothing.
std::optional<grpc::Status>
admin_service::tokens_unavailable(eventstore::event_store*& store) const {
  if (!auth_)
    return grpc::Status{grpc::StatusCode::FAILED_PRECONDITION,
                        "this node runs without --auth token: tokens would "
                        "not be checked"};
  store = engine_->token_store();
  if (!store)
    return grpc::Status{grpc::StatusCode::UNAVAILABLE,
                        "the node's store is not open yet"};
  return std::nullopt;
}

grpc::Status admin_service::CreateToken(grpc::ServerContext* ctx,
                                        const admin::CreateTokenRequest* req,
                                        admin::CreateTokenResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/CreateToken");
  if (!allowed.ok()) return to_status(refusal(allowed));
  eventstore::event_store* store = nullptr;
  if (auto st = tokens_unavailable(store)) return *st;
  if (auto err = check_label("name", req->name())) return to_status(err);
  auto r = auth::parse_role(req->role());
  if (!r)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "role: must be admin, operator, starter, reader or worker, got '"
              + workflow::printable(req->role(), 40) + "'"};
  if (req->expires_in_ms() < 0)
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "expires_in_ms: must not be negative"};
  auth::token_spec spec;
  spec.name = req->name();
  spec.r = *r;
  spec.queues.assign(req->queues().begin(), req->queues().end());
  spec.workflows.assign(req->workflows().begin(), req->workflows().end());
  for (const auto& q : spec.queues)
    if (auto err = check_label("queues", q)) return to_status(err);
  for (const auto& w : spec.workflows)
    if (auto err = check_label("workflows", w)) return to_status(err);
  auto now = auth::wall_clock_ms();
  if (req->expires_in_ms() > 0) spec.expires_at_ms = now + req->expires_in_ms();
  if (!req->cert_subject().empty()) {
    auto subject = free_subject(*store, req->cert_subject(), now);
    if (auto* refused = std::get_if<grpc::Status>(&subject)) return *refused;
    auto row = auth::make_cert_principal(
      spec, std::move(std::get<std::string>(subject)), now);
    if (auto put = store->put_token(row); !put) return store_status(put.err());
    fill(res->mutable_token(), row);
    return grpc::Status::OK;
  }
  auto made = auth::make_token(spec, now);
  if (auto put = store->put_token(made.row); !put)
    return store_status(put.err());
  fill(res->mutable_token(), made.row);
  res->set_secret(made.text);
  return grpc::Status::OK;
}

grpc::Status admin_service::ListTokens(grpc::ServerContext* ctx,
                                       const admin::ListTokensRequest*,
                                       admin::ListTokensResponse* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/ListTokens");
  if (!allowed.ok()) return to_status(refusal(allowed));
  eventstore::event_store* store = nullptr;
  if (auto st = tokens_unavailable(store)) return *st;
  auto rows = store->list_tokens();
  if (!rows) return store_status(rows.err());
  for (const auto& row : *rows)
    fill(res->add_tokens(), row);
  return grpc::Status::OK;
}

grpc::Status admin_service::RevokeToken(grpc::ServerContext* ctx,
                                        const admin::RevokeTokenRequest* req,
                                        admin::TokenInfo* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/RevokeToken");
  if (!allowed.ok()) return to_status(refusal(allowed));
  eventstore::event_store* store = nullptr;
  if (auto st = tokens_unavailable(store)) return *st;
  auto found = store->revoke_token(req->id(), auth::wall_clock_ms());
  if (!found) return store_status(found.err());
  if (!*found)
    return {grpc::StatusCode::NOT_FOUND,
            "no token '" + workflow::printable(req->id(), 40) + "'"};
  auth_->forget(req->id());
  auto row = store->get_token(req->id());
  if (!row) return store_status(row.err());
  if (*row) fill(res, **row);
  return grpc::Status::OK;
}

grpc::Status
admin_service::GetWorkflowOwner(grpc::ServerContext* ctx,
                                const admin::GetWorkflowOwnerRequest* req,
                                admin::WorkflowOwner* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/GetWorkflowOwner");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (auto err = scope_refusal(name_of(allowed), scope_of(allowed), req->name(),
                               "this request"))
    return to_status(err);
  auto view = engine_->workflow_owner(req->name());
  if (!view) return to_status(view.error());
  *res = to_proto(*view);
  return grpc::Status::OK;
}

grpc::Status
admin_service::TransferWorkflow(grpc::ServerContext* ctx,
                                const admin::TransferWorkflowRequest* req,
                                admin::WorkflowOwner* res) {
  auto allowed = check_call(auth_, ctx, "AdminService/TransferWorkflow");
  if (!allowed.ok()) return to_status(refusal(allowed));
  if (auto err = scope_refusal(name_of(allowed), scope_of(allowed), req->name(),
                               "this request"))
    return to_status(err);
  auto view = transfer_workflow(auth_, *engine_, allowed, req->name(),
                                req->to());
  if (!view) return to_status(view.error());
  *res = to_proto(*view);
  return grpc::Status::OK;
}

} // namespace cerebelum::api
