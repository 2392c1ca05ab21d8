#include "eventstore/event_store.hpp"

#include <array>
#include <string>

namespace cerebelum::eventstore {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::conflict: return "conflict";
    case errc::invalid_argument: return "invalid_argument";
    case errc::payload_too_large: return "payload_too_large";
    case errc::unknown_event_type: return "unknown_event_type";
    case errc::corrupt_event: return "corrupt_event";
    case errc::schema_too_new: return "schema_too_new";
    case errc::schema_incompatible: return "schema_incompatible";
    case errc::unavailable: return "unavailable";
    case errc::storage_error: return "storage_error";
    case errc::overloaded: return "overloaded";
    case errc::closed: return "closed";
    case errc::injected_fault: return "injected_fault";
    case errc::corrupt_store: return "corrupt_store";
  }
  return "unknown_error";
}

std::string to_string(const error& err) {
  std::string out{to_string(err.code)};
  out += ": ";
  out += err.message;
  if (err.retryable) out += " [retryable]";
  if (err.possibly_committed) out += " [possibly committed]";
  return out;
}

namespace {

constexpr std::array<const char*, 6> status_names{
  "running",   "sleeping", "awaiting_approval",
  "completed", "failed",   "cancelled"};

} // namespace

const char* to_string(execution_status st) noexcept {
  return status_names[static_cast<std::size_t>(st)];
}

std::optional<execution_status> parse_status(std::string_view name) noexcept {
  for (std::size_t i = 0; i < status_names.size(); ++i)
    if (name == status_names[i]) return static_cast<execution_status>(i);
  return std::nullopt;
}

std::size_t append_request::byte_size() const noexcept {
  std::size_t n = sizeof(*this) + execution_id.size() + index.workflow.size()
                  + index.phase.size();
  for (const auto& ev : events)
    n += sizeof(ev) + ev.payload.size();
  for (const auto& t : timer_upserts)
    n += sizeof(t) + t.timer_id.size() + t.purpose.size();
  for (const auto& id : timer_deletes)
    n += sizeof(id) + id.size();
  for (const auto& t : task_upserts)
    n += sizeof(t) + t.task_id.size() + t.queue.size() + t.step.size()
         + t.attempt_token.size() + t.idempotency_key.size() + t.payload.size()
         + t.lease_owner.size();
  for (const auto& id : task_deletes)
    n += sizeof(id) + id.size();
  for (const auto& d : dead_letter_inserts)
    n += sizeof(d) + d.task_id.size() + d.queue.size() + d.payload.size()
         + d.error.size();
  n += dead_letter_deletes.size() * sizeof(std::int64_t);
  for (const auto& d : definition_inserts)
    n += sizeof(d) + d.name.size() + d.document.size() + d.source.size();
  return n;
}

event_store::~event_store() = default;

namespace {

error no_tokens() {
  return error{errc::invalid_argument,
               "this store keeps no tokens (authentication needs the "
               "embedded SQLite store or PostgreSQL)",
               false, false};
}

} // namespace

status event_store::put_token(const token_row&) {
  return no_tokens();
}

result<std::optional<token_row>> event_store::get_token(std::string_view) {
  return no_tokens();
}

result<std::vector<token_row>> event_store::list_tokens() {
  return no_tokens();
}

result<bool> event_store::revoke_token(std::string_view, std::int64_t) {
  return no_tokens();
}

status event_store::touch_token(std::string_view, std::int64_t) {
  return no_tokens();
}

namespace {

error no_owners() {
  return error{errc::invalid_argument,
               "this store keeps no workflow owners (the embedded SQLite "
               "store and PostgreSQL do)",
               false, false};
}

} // namespace

result<std::string>
event_store::claim_workflow(std::string_view, std::string_view, std::int64_t) {
  return no_owners();
}

result<std::optional<workflow_owner_row>>
event_store::get_workflow_owner(std::string_view) {
  return no_owners();
}

result<workflow_owner_row>
event_store::replace_workflow_owner(std::string_view, std::string_view,
                                    std::string_view, std::int64_t) {
  return no_owners();
}

status event_store::put_definition(const definition_row& row) {
  if (row.name.empty() || row.document.empty())
    return make_error(errc::invalid_argument,
                      "put_definition without a name or a document");
  return put_definitions({&row, 1});
}

append_result event_store::append(const append_request& req) {
  auto results = append_batch(std::span<const append_request>{&req, 1});
  return std::move(results.front());
}

namespace {

error invalid(const append_request& req, std::string what) {
  return make_error(errc::invalid_argument, "append to execution '"
                                              + req.execution_id
                                              + "': " + std::move(what));
}

status validate_rows(const append_request& req, const store_limits& limits) {
  for (const auto& t : req.timer_upserts)
    if (t.timer_id.empty())
      return invalid(req, "timer upsert with an empty timer_id");
  for (const auto& id : req.timer_deletes)
    if (id.empty()) return invalid(req, "timer delete with an empty timer_id");
  for (const auto& t : req.task_upserts) {
    if (t.task_id.empty())
      return invalid(req, "task upsert with an empty task_id");
    if (t.payload.size() > limits.max_payload_bytes)
      return make_error(errc::payload_too_large,
                        "task '" + t.task_id + "' payload is "
                          + std::to_string(t.payload.size())
                          + " bytes, the limit (max_payload_bytes) is "
                          + std::to_string(limits.max_payload_bytes));
  }
  for (const auto& id : req.task_deletes)
    if (id.empty()) return invalid(req, "task delete with an empty task_id");
  for (const auto& d : req.definition_inserts)
    if (d.name.empty() || d.document.empty())
      return invalid(req, "definition insert without a name or a document");
  for (const auto& d : req.dead_letter_inserts)
    if (d.payload.size() + d.error.size() > limits.max_payload_bytes)
      return make_error(errc::payload_too_large,
                        "dead letter of task '" + d.task_id + "' is "
                          + std::to_string(d.payload.size() + d.error.size())
                          + " bytes, the limit (max_payload_bytes) is "
                          + std::to_string(limits.max_payload_bytes));
  return ok_status();
}

} // namespace

status validate(const append_request& req, const store_limits& limits) {
  if (req.execution_id.empty())
    return make_error(errc::invalid_argument,
                      "append with an empty execution_id");
  if (req.execution_id.size() > limits.max_execution_id_bytes)
    return invalid(req, "execution_id is longer than "
                          + std::to_string(limits.max_execution_id_bytes)
                          + " bytes");
  if (req.expected_next_seq < 0)
    return invalid(req, "negative expected_next_seq "
                          + std::to_string(req.expected_next_seq));
  if (req.events.size() > limits.max_events_per_append)
    return invalid(req, std::to_string(req.events.size())
                          + " events in one append, the limit is "
                          + std::to_string(limits.max_events_per_append));
  for (std::size_t i = 0; i < req.events.size(); ++i) {
    const auto& ev = req.events[i];
    if (ev.type <= 0)
      return invalid(req, "event #" + std::to_string(i)
                            + " has a non-positive type code "
                            + std::to_string(ev.type));
    if (ev.payload.size() > limits.max_payload_bytes)
      return make_error(errc::payload_too_large,
                        "append to execution '" + req.execution_id
                          + "': event #" + std::to_string(i) + " payload is "
                          + std::to_string(ev.payload.size())
                          + " bytes, the limit (max_payload_bytes) is "
                          + std::to_string(limits.max_payload_bytes));
  }
  return validate_rows(req, limits);
}

status check_schema_version(int stored, std::string_view where) {
  if (stored == current_schema_version) return ok_status();
  auto versions = "schema version " + std::to_string(stored) + " in "
                  + std::string{where} + ", this node supports version "
                  + std::to_string(current_schema_version);
  if (stored > current_schema_version)
    return make_error(errc::schema_too_new,
                      "the store was written by a newer Cerebelum node ("
                        + versions
                        + "): upgrade this node to a release that supports "
                          "the newer schema; do not downgrade the database");
  return make_error(errc::schema_incompatible,
                    "incompatible event store (" + versions
                      + "): this node has no migration from it; use a "
                        "release that migrates it or point the node at a "
                        "fresh data directory / database schema");
}

} // namespace cerebelum::eventstore
