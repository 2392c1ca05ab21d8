#include "src/cli/output.hpp"

#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <vector>

#include "src/bridges/json_convert.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::cli {

namespace {

using json = nlohmann::json;

/// Compact JSON, strings unquoted.
std::string render(const json& value) {
  return value.is_string() ? value.get<std::string>()
                           : workflow::safe_dump(value);
}

bool is_empty(const json& value) {
  return value.is_null()
         || (value.is_string() && value.get<std::string>().empty())
         || (value.is_number() && value == 0)
         || (value.is_object() && value.empty());
}

/// "key=value" for every meaningful field of an event, in proto order.
std::string event_fields(const json& ev) {
  std::string out;
  for (auto& [key, value] : ev.items()) {
    if (key == "seq" || key == "recorded_at_ms" || key == "type"
        || key == "attempt_token" || key == "map_index" || is_empty(value))
      continue;
    if (key.size() > 3 && key.compare(key.size() - 3, 3, "_ms") == 0
        && key != "retry_delay_ms" && key != "timeout_ms"
        && key != "fire_at_ms")
      continue; // timestamps repeat the event's time
    if (!out.empty()) out += ' ';
    out += key + '='
           + (key == "fire_at_ms" ? format_time(value.get<std::int64_t>())
                                  : render(value));
  }
  return out;
}

void line(const char* key, const std::string& value) {
  if (!value.empty())
    std::cout << std::left << std::setw(11) << key << value << '\n';
}

} // namespace

void print_json(const nlohmann::json& value) {
  std::cout << workflow::safe_dump(value, 2) << '\n';
}

std::string format_time(std::int64_t ms) {
  if (ms == 0) return "-";
  std::time_t secs = ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::ostringstream out;
  out << buf << '.' << std::setw(3) << std::setfill('0') << (ms % 1000) << 'Z';
  return out.str();
}

void print_execution(const admin::ExecutionInfo& info) {
  auto view = api::message_to_json(info);
  line("execution", info.execution_id());
  line("workflow", info.workflow() + " (version "
                     + std::to_string(info.workflow_version()) + ")");
  line("status", info.status());
  line("created", format_time(info.created_at_ms()));
  line("updated", format_time(info.updated_at_ms()));
  line("input", info.input_json());
  if (info.wake_at_ms() != 0) line("wakes at", format_time(info.wake_at_ms()));
  line("awaiting", info.awaiting_step());
  if (!info.awaiting_step().empty())
    line("data", render(view["approval_data"]));
  line("result", info.result_json());
  if (info.has_error())
    line("error", info.error().kind() + ": " + info.error().message());
  line("events", std::to_string(info.history_length()));
  line("stuck", info.stuck_reason());
}

void print_table(const std::vector<std::vector<std::string>>& cells) {
  if (cells.empty()) return;
  std::vector<std::size_t> widths(cells.front().size(), 0);
  for (auto& r : cells)
    for (std::size_t i = 0; i < r.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], r[i].size());
  for (auto& r : cells) {
    for (std::size_t i = 0; i < r.size(); ++i)
      std::cout << std::left << std::setw(static_cast<int>(widths[i] + 2))
                << r[i];
    std::cout << '\n';
  }
}

void print_execution_table(
  const google::protobuf::RepeatedPtrField<admin::ExecutionInfo>& rows) {
  std::vector<std::vector<std::string>> cells;
  // A STUCK column only when a row has a reason.
  bool stuck = false;
  for (auto& row : rows)
    stuck = stuck || !row.stuck_reason().empty();
  cells.push_back({"ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED"});
  if (stuck) cells.back().push_back("STUCK");
  for (auto& row : rows) {
    cells.push_back({row.execution_id(), row.workflow(), row.status(),
                     format_time(row.created_at_ms()),
                     format_time(row.updated_at_ms())});
    if (stuck) cells.back().push_back(row.stuck_reason());
  }
  print_table(cells);
}

void print_event(const events::Event& ev) {
  auto view = api::event_to_json(ev);
  std::cout << std::right << std::setw(4) << ev.seq() << "  "
            << format_time(ev.recorded_at_ms()) << "  " << std::left
            << std::setw(20) << view["type"].get<std::string>() << ' '
            << event_fields(view) << '\n';
}

void print_history(
  const google::protobuf::RepeatedPtrField<events::Event>& events) {
  for (auto& ev : events)
    print_event(ev);
}

} // namespace cerebelum::cli
