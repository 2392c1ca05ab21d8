#include "tests/api/fake_engine.hpp"

#include <thread>

#include "actors/errc.hpp"

namespace cerebelum::test {

using actors::errc;
using actors::make_error;
using st = eventstore::execution_status;

void fake_engine::set_status(const std::string& id, st status) {
  std::lock_guard guard{mtx_};
  executions_[id].status = status;
  if (status == st::awaiting_approval) {
    executions_[id].awaiting_step = "approve";
    executions_[id].approval_data = {{"amount", 1500}};
  }
  if (status == st::completed) executions_[id].result = {{"shipped", true}};
}

caf::expected<actors::start_response>
fake_engine::start(const actors::start_request& req) {
  std::lock_guard guard{mtx_};
  if (req.workflow == "busy")
    return make_error(errc::overloaded,
                      "the node is over capacity: its store writer's queue is "
                      "60% full; retry in a second");
  if (req.workflow != "order" && req.workflow != "nap")
    return make_error(errc::unknown_workflow,
                      "no workflow named '" + req.workflow + "'");
  auto id = req.execution_id.empty() ? "e-" + std::to_string(next_id_++)
                                     : req.execution_id;
  if (auto i = executions_.find(id); i != executions_.end())
    return actors::start_response{i->second, false};
  actors::execution_view view;
  view.execution_id = id;
  view.workflow = req.workflow;
  view.workflow_version = 7;
  view.input = req.input;
  view.created_at_ms = 1'700'000'000'000;
  executions_[id] = view;
  if (req.workflow == "nap")
    naps_[id] = std::chrono::steady_clock::now() + nap_time;
  return actors::start_response{view, true};
}

caf::expected<actors::execution_view>
fake_engine::describe(const std::string& id) {
  std::lock_guard guard{mtx_};
  auto i = executions_.find(id);
  if (i == executions_.end())
    return make_error(errc::not_found, "no execution with id '" + id + "'");
  if (auto n = naps_.find(id);
      n != naps_.end() && std::chrono::steady_clock::now() >= n->second) {
    i->second.status = st::completed;
    i->second.result = {{"slept", true}};
    naps_.erase(n);
  }
  return i->second;
}

caf::expected<actors::list_response>
fake_engine::list(const actors::list_request& req) {
  std::lock_guard guard{mtx_};
  std::size_t skip = 0;
  if (!req.page_token.empty()) {
    if (req.page_token.find_first_not_of("0123456789") != std::string::npos)
      return make_error(errc::invalid_argument, "page_token: malformed");
    skip = std::stoul(req.page_token);
  }
  auto size = req.page_size == 0 ? 100 : req.page_size;
  actors::list_response res;
  std::size_t seen = 0;
  for (auto& [id, view] : executions_) {
    if (req.status && view.status != *req.status) continue;
    if (req.workflow && view.workflow != *req.workflow) continue;
    if (seen++ < skip) continue;
    if (res.executions.size() == size) {
      res.next_page_token = std::to_string(skip + size);
      break;
    }
    res.executions.push_back(view);
  }
  return res;
}

caf::expected<std::vector<events::Event>>
fake_engine::history(const std::string& id, std::int64_t from_seq) {
  auto view = describe(id);
  if (!view) return std::move(view.error());
  std::vector<events::Event> result;
  events::Event started;
  started.set_seq(0);
  started.set_recorded_at_ms(view->created_at_ms);
  started.mutable_execution_started()->set_workflow(view->workflow);
  started.mutable_execution_started()->set_input_json(view->input.dump());
  events::Event completed;
  completed.set_seq(1);
  completed.mutable_step_completed()->set_step("validate");
  completed.mutable_step_completed()->set_result_json(R"({"ok":true})");
  for (auto& ev : {started, completed})
    if (ev.seq() >= from_seq) result.push_back(ev);
  return result;
}

actors::follow_stop fake_engine::follow(const std::string& id,
                                        std::int64_t from_seq,
                                        actors::follow_sink sink) {
  auto events = history(id, from_seq);
  if (!events) {
    sink.end(std::move(events.error()));
  } else if (sink.events(std::move(*events))) {
    sink.end({});
  }
  return [] {};
}

caf::expected<actors::execution_view>
fake_engine::approve(const std::string& id, const actors::operator_id& who,
                     const actors::json& data) {
  auto view = describe(id);
  if (!view) return view;
  if (view->status != st::awaiting_approval)
    return make_error(errc::not_awaiting_approval,
                      "execution " + id + " is not awaiting approval");
  {
    std::lock_guard guard{mtx_};
    last_by = who.by;
    last_note = who.note;
    last_data = data;
  }
  set_status(id, st::running);
  return describe(id);
}

caf::expected<actors::execution_view>
fake_engine::reject(const std::string& id, const actors::operator_id& who,
                    const std::string&) {
  return approve(id, who, actors::json{});
}

caf::expected<actors::execution_view>
fake_engine::cancel(const std::string& id, const actors::operator_id&,
                    const std::string&) {
  auto view = describe(id);
  if (!view) return view;
  if (eventstore::is_terminal(view->status))
    return make_error(errc::already_terminal,
                      "execution " + id + " has already finished");
  set_status(id, st::cancelled);
  return describe(id);
}

caf::expected<actors::execution_view>
fake_engine::wait(const std::string& id, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto view = describe(id);
    if (!view || eventstore::is_terminal(view->status)) return view;
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(errc::deadline_exceeded, "still running: " + id);
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
}

void fake_engine::wait_async(const std::string& id,
                             std::chrono::milliseconds timeout,
                             wait_callback done) {
  std::lock_guard<std::mutex> guard{waiters_mtx_};
  waits_.push_back(
    {id, std::chrono::steady_clock::now() + timeout, std::move(done)});
  if (!poller_.joinable())
    poller_ = std::thread{[this] {
      poll_waits();
    }};
}

void fake_engine::poll_waits() {
  using namespace std::chrono_literals;
  std::unique_lock<std::mutex> guard{waiters_mtx_};
  for (;;) {
    std::vector<std::pair<wait_callback, caf::expected<actors::execution_view>>>
      ready;
    auto now = std::chrono::steady_clock::now();
    for (auto i = waits_.begin(); i != waits_.end();) {
      auto view = describe(i->id);
      if (stopping_)
        ready.emplace_back(std::move(i->done),
                           make_error(errc::unavailable, "engine stopped"));
      else if (!view || eventstore::is_terminal(view->status))
        ready.emplace_back(std::move(i->done), std::move(view));
      else if (now >= i->deadline)
        ready.emplace_back(std::move(i->done),
                           make_error(errc::deadline_exceeded,
                                      "still running: " + i->id));
      else {
        ++i;
        continue;
      }
      i = waits_.erase(i);
    }
    if (stopping_ && waits_.empty() && ready.empty()) return;
    guard.unlock();
    for (auto& [done, result] : ready)
      done(std::move(result));
    guard.lock();
    waiters_cv_.wait_for(guard, 5ms, [this] {
      return stopping_;
    });
  }
}

fake_engine::~fake_engine() {
  {
    std::lock_guard<std::mutex> guard{waiters_mtx_};
    stopping_ = true;
  }
  waiters_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

actors::health_view fake_engine::health() {
  return health_answer;
}

caf::expected<actors::upgrade_report>
fake_engine::check_upgrade(const std::string& definition_text,
                           const std::string& file) {
  if (definition_text == "bad")
    return actors::make_error(actors::errc::invalid_argument,
                              "workflow file " + file + ": bad");
  actors::upgrade_report report{"order", 8, {}};
  report.executions.push_back({"o-1", 7, true, -1, "", "", ""});
  report.executions.push_back({"o-2", 7, false, 1, "step_scheduled", "validate",
                               "step 'validate' is not in the new "
                               "definition (renamed or removed)"});
  return report;
}

caf::expected<actors::upgrade_report>
fake_engine::migrate(const std::string& definition_text,
                     const std::string& file, const actors::operator_id& who) {
  if (who.by.empty())
    return actors::make_error(actors::errc::invalid_argument,
                              "by: a migration needs the operator's name");
  auto report = check_upgrade(definition_text, file);
  if (!report) return report;
  report->executions[0].migrated = true;
  migrated_by = who.by;
  return report;
}

std::vector<actors::workflow_view> fake_engine::workflows() {
  return {{"order", 7, "examples/workflows/order.yaml", false, false, false, 0,
           0, "the node's workflow files"}};
}

caf::expected<actors::workflow_owner_view>
fake_engine::workflow_owner(const std::string& name) {
  if (name != "order")
    return make_error(errc::unknown_workflow,
                      "no one owns workflow '" + name + "'");
  eventstore::workflow_owner_row row{"order",     "token 'a'",     1,
                                     "token 'b'", "token 'admin'", 5};
  return actors::workflow_owner_view{"order", "token 'a'", std::move(row)};
}

caf::expected<actors::dead_letter_list>
fake_engine::dead_letters(const std::string& queue, std::size_t,
                          const std::string& page_token) {
  std::lock_guard guard{mtx_};
  if (!page_token.empty())
    return make_error(errc::invalid_argument, "bad page token");
  actors::dead_letter_list out;
  if (!dead_letter_retried_ && (queue.empty() || queue == "billing")) {
    actors::dead_letter_view v;
    v.id = 1;
    v.task_id = "t-1";
    v.execution_id = "dl-1";
    v.workflow = "order";
    v.step = "charge";
    v.queue = "billing";
    v.attempt = 3;
    v.input_json = R"({"amount":1500})";
    v.error_kind = "card_declined";
    v.error_message = "declined";
    v.failed_at_ms = 1'700'000'000'000;
    out.items.push_back(std::move(v));
  }
  return out;
}

caf::expected<actors::execution_view>
fake_engine::retry_dead_letter(std::int64_t id,
                               const actors::operator_id& who) {
  std::lock_guard guard{mtx_};
  if (who.by.empty()) return make_error(errc::invalid_argument, "by: empty");
  if (id != 1)
    return make_error(errc::not_found,
                      "no dead letter with id " + std::to_string(id));
  if (dead_letter_retried_)
    return make_error(errc::not_retryable, "retried already");
  dead_letter_retried_ = true;
  last_by = who.by;
  last_note = who.note;
  auto& view = executions_["dl-1"];
  view.execution_id = "dl-1";
  view.workflow = "order";
  view.status = st::running;
  return view;
}

} // namespace cerebelum::test
