#include "actors/task_checks.hpp"

#include <map>

#include "actors/payload_limit.hpp"
#include "workflow/loader.hpp"

namespace cerebelum::actors {

std::optional<task_error> check_json(const std::string& text,
                                     std::string_view what, bool optional) {
  if (text.size() > max_task_json_bytes)
    return task_error{task_errc::oversized,
                      std::string{what} + " is " + std::to_string(text.size())
                        + " bytes, the limit is "
                        + std::to_string(max_task_json_bytes)};
  if (text.empty()) {
    if (optional) return std::nullopt;
    return task_error{task_errc::invalid_json,
                      std::string{what} + " is empty (expected JSON text)"};
  }
  if (auto doc = workflow::parse_json(text, what); !doc)
    return task_error{task_errc::invalid_json, doc.error().message};
  return std::nullopt;
}

std::optional<task_error>
check_field(std::string_view what, const std::string& value,
            std::size_t max_bytes, workflow::text_rule rule) {
  if (auto bad = workflow::check_text(what, value, max_bytes, rule))
    return task_error{task_errc::invalid_argument, std::move(*bad)};
  return std::nullopt;
}

task_result<std::vector<workflow::definition>>
check_registration(const worker_registration& reg) {
  using res_t = task_result<std::vector<workflow::definition>>;
  if (reg.worker_id.empty())
    return res_t::fail(task_errc::invalid_argument, "worker_id is empty");
  if (auto bad = check_field("worker_id", reg.worker_id,
                             workflow::max_name_bytes,
                             workflow::text_rule::name))
    return res_t::fail(bad->code, bad->message);
  for (auto& q : reg.queues)
    if (auto bad = check_field("queues", q, workflow::max_name_bytes,
                               workflow::text_rule::name))
      return res_t::fail(bad->code, bad->message);
  if (reg.queues.empty())
    return res_t::fail(task_errc::invalid_argument,
                       "worker '" + reg.worker_id
                         + "' registers no queue (name at least one)");
  for (auto& q : reg.queues)
    if (q.empty())
      return res_t::fail(task_errc::invalid_argument,
                         "worker '" + reg.worker_id
                           + "' registers an empty queue name");
  // Validate every definition before adding any.
  std::vector<workflow::definition> defs;
  std::map<std::string, std::string> sources; // workflow name -> source name
  for (auto& src : reg.workflows) {
    auto name = src.name.empty() ? std::string{"<worker workflow>"} : src.name;
    workflow::result<workflow::definition> def = workflow::load_yaml("", name);
    if (src.format == "json")
      def = workflow::load_json_text(src.text, name);
    else if (src.format == "yaml" || src.format.empty())
      def = workflow::load_yaml(src.text, name);
    else
      return res_t::fail(task_errc::invalid_workflow,
                         name + ": unknown format '" + src.format
                           + "' (expected \"yaml\" or \"json\")");
    if (!def)
      return res_t::fail(task_errc::invalid_workflow, def.error().to_string());
    auto [first, fresh] = sources.emplace(def->name, name);
    if (!fresh)
      return res_t::fail(task_errc::invalid_workflow,
                         "workflow '" + def->name + "' is defined twice: in "
                           + first->second + " and in " + name);
    defs.push_back(std::move(*def));
  }
  return res_t::ok(std::move(defs));
}

std::optional<task_error>
check_no_native_calls(const std::string& worker,
                      const std::vector<workflow::definition>& defs) {
  for (auto& d : defs)
    for (auto& s : d.steps)
      if (s.kind == workflow::step_kind::call
          || (s.kind == workflow::step_kind::map
              && s.child_kind == workflow::step_kind::call))
        return task_error{
          task_errc::permission_denied,
          "workflow '" + d.name + "' of worker '" + worker + "': step '"
            + s.name + "' calls the native function '" + s.target
            + "'; this node does not let workers' workflows call native "
              "functions (start it with --allow-worker-calls to allow it)"};
  return std::nullopt;
}

namespace {

using event_result = task_result<events::Event>;

/// A step_failed event of attempt `a` by `worker`; the caller fills its
/// error (returned).
events::ErrorInfo* step_failed_event(events::Event& ev, const attempt_info& a,
                                     const std::string& worker,
                                     std::int64_t now) {
  auto* f = ev.mutable_step_failed();
  f->set_step(a.step);
  f->set_attempt(a.attempt);
  f->set_attempt_token(a.token);
  f->set_failed_at_ms(now);
  f->set_map_index(a.map_index);
  f->set_worker_id(worker);
  return f->mutable_error();
}

/// The step's failure (not retryable) when what the worker reported is
/// over the node's payload limit: reported again, it would be as large.
event_result too_large(const attempt_info& a, const std::string& worker,
                       std::string message, std::int64_t now) {
  events::Event ev;
  auto* info = step_failed_event(ev, a, worker, now);
  info->set_kind("payload_too_large");
  info->set_message(std::move(message));
  info->set_retryable(false);
  return event_result::ok(std::move(ev));
}

event_result success_event(const attempt_info& a, const std::string& worker,
                           const task_success& ok, std::int64_t now,
                           std::size_t limit) {
  if (auto over = payload_over("result_json of step '" + a.step + "'",
                               ok.result_json.size(), limit))
    return too_large(a, worker, std::move(*over), now);
  if (auto err = check_json(ok.result_json, "result_json", false))
    return {std::nullopt, std::move(err)};
  events::Event ev;
  auto* c = ev.mutable_step_completed();
  c->set_step(a.step);
  c->set_attempt(a.attempt);
  c->set_attempt_token(a.token);
  c->set_result_json(ok.result_json);
  c->set_completed_at_ms(now);
  c->set_map_index(a.map_index);
  c->set_worker_id(worker);
  return event_result::ok(std::move(ev));
}

event_result failure_event(const attempt_info& a, const std::string& worker,
                           const task_failure& bad, std::int64_t now,
                           std::size_t limit) {
  if (auto over = payload_over(
        "the error (message and details_json) of step '" + a.step + "'",
        bad.message.size() + bad.details_json.size(), limit))
    return too_large(a, worker, std::move(*over), now);
  if (auto err = check_json(bad.details_json, "error.details_json", true))
    return {std::nullopt, std::move(err)};
  if (bad.message.size() > max_task_json_bytes)
    return event_result::fail(task_errc::oversized,
                              "error.message is larger than 1 MiB");
  std::optional<task_error> err;
  if ((err = check_field("error.kind", bad.kind, workflow::max_name_bytes,
                         workflow::text_rule::name))
      || (err = check_field("error.message", bad.message, max_task_json_bytes,
                            workflow::text_rule::free)))
    return {std::nullopt, std::move(err)};
  events::Event ev;
  auto* info = step_failed_event(ev, a, worker, now);
  info->set_kind(bad.kind.empty() ? "error" : bad.kind);
  info->set_message(bad.message);
  info->set_details_json(bad.details_json);
  info->set_retryable(bad.retryable);
  return event_result::ok(std::move(ev));
}

event_result suspend_event(const attempt_info& a, const std::string& worker,
                           const task_suspend& s, std::int64_t now,
                           std::size_t limit) {
  if (auto over
      = payload_over("suspend.approval_data_json of step '" + a.step + "'",
                     s.approval_data_json.size(), limit))
    return too_large(a, worker, std::move(*over), now);
  if (auto err = check_field("suspend.wait_key", s.wait_key,
                             workflow::max_name_bytes,
                             workflow::text_rule::name))
    return {std::nullopt, std::move(err)};
  if (s.wait_key.empty())
    return event_result::fail(task_errc::invalid_argument,
                              "suspend.wait_key is empty (name the wait, "
                              "unique within the step, e.g. \"sleep#1\")");
  if ((s.sleep_ms > 0) == s.approval)
    return event_result::fail(task_errc::invalid_argument,
                              "suspend needs exactly one of sleep_ms > 0 or "
                              "approval = true");
  if (s.sleep_ms < 0 || s.approval_timeout_ms < 0)
    return event_result::fail(task_errc::invalid_argument,
                              "suspend.sleep_ms and approval_timeout_ms must "
                              "not be negative");
  if (auto err = check_json(s.approval_data_json, "suspend.approval_data_json",
                            true))
    return {std::nullopt, std::move(err)};
  events::Event ev;
  auto* p = ev.mutable_step_suspended();
  p->set_step(a.step);
  p->set_attempt(a.attempt);
  p->set_attempt_token(a.token);
  p->set_wait_key(s.wait_key);
  p->set_sleep_ms(s.sleep_ms);
  p->set_approval(s.approval);
  p->set_approval_data_json(s.approval_data_json);
  p->set_approval_timeout_ms(s.approval_timeout_ms);
  p->set_suspended_at_ms(now);
  p->set_map_index(a.map_index);
  p->set_worker_id(worker);
  return event_result::ok(std::move(ev));
}

} // namespace

task_result<events::Event>
outcome_event(const attempt_info& a, const std::string& worker,
              const task_outcome& out, std::int64_t now_ms, std::size_t limit) {
  if (auto* ok = std::get_if<task_success>(&out))
    return success_event(a, worker, *ok, now_ms, limit);
  if (auto* bad = std::get_if<task_failure>(&out))
    return failure_event(a, worker, *bad, now_ms, limit);
  return suspend_event(a, worker, std::get<task_suspend>(out), now_ms, limit);
}

} // namespace cerebelum::actors
