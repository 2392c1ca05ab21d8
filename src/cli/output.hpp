#pragma once

// Human and JSON renderings of the CLI's results.

#include <string>
#include <vector>

#include <google/protobuf/repeated_field.h>
#include <nlohmann/json.hpp>

#include "admin.pb.h"

namespace cerebelum::cli {

/// Prints `value` as indented JSON to stdout.
void print_json(const nlohmann::json& value);

/// Formats milliseconds since the epoch as "2026-01-31T12:00:00.000Z";
/// 0 as "-".
std::string format_time(std::int64_t ms);

/// Prints one execution as "key  value" lines.
void print_execution(const admin::ExecutionInfo& info);

/// Prints rows of cells as a table, the first row the header.
void print_table(const std::vector<std::vector<std::string>>& cells);

/// Prints executions as a table: id, workflow, status, created, updated (and
/// why it is stuck, when one is).
void print_execution_table(
  const google::protobuf::RepeatedPtrField<admin::ExecutionInfo>& rows);

/// Prints one event as a line: seq, time, type, key fields.
void print_event(const events::Event& ev);

/// Prints a history, one event per line: seq, time, type, key fields.
void print_history(
  const google::protobuf::RepeatedPtrField<events::Event>& events);

} // namespace cerebelum::cli
