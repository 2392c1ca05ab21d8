#include "actors/step_runner.hpp"

#include <algorithm>

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/messages.hpp"
#include "actors/payload_limit.hpp"

namespace cerebelum::actors {

namespace {

events::Event failed(const workflow::run_step_command& cmd, std::string kind,
                     std::string message, bool retryable, std::int64_t now) {
  events::Event ev;
  auto* f = ev.mutable_step_failed();
  f->set_step(cmd.step);
  f->set_attempt(cmd.attempt);
  f->set_attempt_token(cmd.token);
  f->set_map_index(cmd.map_index);
  f->set_failed_at_ms(now);
  auto* e = f->mutable_error();
  e->set_kind(std::move(kind));
  e->set_message(std::move(message));
  e->set_retryable(retryable);
  return ev;
}

/// The step's failure when what `fn` returned (`ev`) is over `limit`: the
/// same function on the same input would return it again.
events::Event within_limit(events::Event ev,
                           const workflow::run_step_command& cmd,
                           std::size_t limit, std::int64_t now) {
  std::optional<std::string> over;
  if (ev.has_step_completed())
    over = payload_over("the result of step '" + cmd.step + "'",
                        ev.step_completed().result_json().size(), limit);
  else if (ev.has_step_failed())
    over = payload_over("the error of step '" + cmd.step + "'",
                        ev.step_failed().error().message().size(), limit);
  if (!over) return ev;
  return failed(cmd, "payload_too_large", std::move(*over), false, now);
}

events::Event run(const native_function& fn,
                  const workflow::run_step_command& cmd, const clock& clk) {
  try {
    auto result = fn(cmd.input);
    events::Event ev;
    auto* c = ev.mutable_step_completed();
    c->set_step(cmd.step);
    c->set_attempt(cmd.attempt);
    c->set_attempt_token(cmd.token);
    c->set_map_index(cmd.map_index);
    c->set_result_json(workflow::json_text(result));
    c->set_completed_at_ms(clk.now_ms());
    return ev;
  } catch (const step_failure& e) {
    return failed(cmd, e.kind, e.what(), e.retryable, clk.now_ms());
  } catch (const std::exception& e) {
    return failed(cmd, "exception", e.what(), true, clk.now_ms());
  } catch (...) {
    return failed(cmd, "exception", "unknown exception", true, clk.now_ms());
  }
}

} // namespace

namespace {

/// Runs `fn` on the attempt `cmd` and tells the metrics how it went and how
/// long it took: its step_completed or step_failed event (over `limit`: the
/// step's failure).
events::Event
run_measured(const native_function& fn, const workflow::run_step_command& cmd,
             const clock& clk, std::size_t limit, node_metrics& metrics) {
  stopwatch took;
  auto ev = within_limit(run(fn, cmd, clk), cmd, limit, clk.now_ms());
  metrics.step_finished(
    "native", ev.has_step_completed() ? "completed" : "failed", took.seconds());
  return ev;
}

} // namespace

dispatched dispatch_call(engine_context& ctx, caf::actor to,
                         const workflow::run_step_command& cmd) {
  auto fn = ctx.functions().find(cmd.target);
  if (!fn)
    return {nullptr, failed(cmd, "unknown_function",
                            "no native function named " + cmd.target
                              + " is registered on this node",
                            false, ctx.now_ms())};
  auto limit = ctx.options().max_payload_bytes;
  if (fn->where == run_on::actor) {
    const auto& clk = *ctx.options().clock;
    auto started = clk.now_ms();
    auto ev = run_measured(fn->fn, cmd, clk, limit, ctx.metrics());
    auto elapsed = clk.now_ms() - started;
    if (cmd.start_to_close_timeout_ms > 0
        && elapsed > cmd.start_to_close_timeout_ms) {
      spdlog::warn("native function {} of step '{}' ran {} ms on its "
                   "execution's actor, over the step's timeout of {} ms: its "
                   "result is dropped and the timeout fails the attempt",
                   cmd.target, cmd.step, elapsed,
                   cmd.start_to_close_timeout_ms);
      return {};
    }
    return {nullptr, std::move(ev)};
  }
  auto began = std::make_shared<std::atomic<std::int64_t>>(0);
  // The call pool is stopped before the context goes: `metrics` outlives it.
  ctx.calls().post([fn = std::move(fn), cmd, to, clk = ctx.options().clock,
                    limit, metrics = &ctx.metrics(), began] {
    began->store(std::max<std::int64_t>(1, clk->now_ms()));
    auto ev = run_measured(fn->fn, cmd, *clk, limit, *metrics);
    caf::anon_send(to, outcome_atom::value, cmd.token,
                   std::make_shared<const events::Event>(std::move(ev)));
  });
  return {std::move(began), std::nullopt};
}

} // namespace cerebelum::actors
