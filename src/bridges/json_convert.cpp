#include "src/bridges/json_convert.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "proto/events.pb.h"
#include "workflow/safe_text.hpp"

namespace cerebelum::api {

namespace {

namespace pb = google::protobuf;

constexpr std::string_view json_suffix = "_json";

bool ends_with_json(const std::string& name) {
  return name.size() > json_suffix.size()
         && name.compare(name.size() - json_suffix.size(), json_suffix.size(),
                         json_suffix)
              == 0;
}

/// Renders JSON text; text that is not JSON stays a string rather than being
/// lost.
json embedded_json(const std::string& text) {
  if (auto parsed = parse_json_text(text)) return std::move(*parsed);
  return text;
}

/// A version hash (`version`, `workflow_version`): any 64-bit value, so it
/// travels as a decimal string (JavaScript numbers hold 53 bits).
bool is_version_hash(const pb::FieldDescriptor* fd) {
  constexpr std::string_view suffix = "_version";
  const auto& name = fd->name();
  return fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64
         && (name == "version"
             || (name.size() > suffix.size()
                 && name.compare(name.size() - suffix.size(), suffix.size(),
                                 suffix)
                      == 0));
}

json scalar_to_json(const pb::Message& msg, const pb::FieldDescriptor* fd) {
  auto* refl = msg.GetReflection();
  using fdt = pb::FieldDescriptor;
  if (is_version_hash(fd)) return std::to_string(refl->GetUInt64(msg, fd));
  switch (fd->cpp_type()) {
    case fdt::CPPTYPE_INT32: return refl->GetInt32(msg, fd);
    case fdt::CPPTYPE_INT64: return refl->GetInt64(msg, fd);
    case fdt::CPPTYPE_UINT32: return refl->GetUInt32(msg, fd);
    case fdt::CPPTYPE_UINT64: return refl->GetUInt64(msg, fd);
    case fdt::CPPTYPE_DOUBLE: return refl->GetDouble(msg, fd);
    case fdt::CPPTYPE_FLOAT: return refl->GetFloat(msg, fd);
    case fdt::CPPTYPE_BOOL: return refl->GetBool(msg, fd);
    case fdt::CPPTYPE_ENUM: return refl->GetEnum(msg, fd)->name();
    case fdt::CPPTYPE_STRING: return refl->GetString(msg, fd);
    case fdt::CPPTYPE_MESSAGE:
      return message_to_json(refl->GetMessage(msg, fd));
  }
  return nullptr;
}

json repeated_to_json(const pb::Message& msg, const pb::FieldDescriptor* fd) {
  auto* refl = msg.GetReflection();
  auto result = json::array();
  int n = refl->FieldSize(msg, fd);
  for (int i = 0; i < n; ++i) {
    if (fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE)
      result.push_back(message_to_json(refl->GetRepeatedMessage(msg, fd, i)));
    else if (fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING)
      result.push_back(refl->GetRepeatedString(msg, fd, i));
    else if (fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64)
      result.push_back(refl->GetRepeatedInt64(msg, fd, i));
    else if (fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32)
      result.push_back(refl->GetRepeatedInt32(msg, fd, i));
  }
  return result;
}

/// Adds `fd` of `msg` to `out`; unset submessages and unset oneof members
/// are left out.
void add_field(const pb::Message& msg, const pb::FieldDescriptor* fd,
               json& out) {
  auto* refl = msg.GetReflection();
  const auto& name = fd->name();
  if (fd->is_repeated()) {
    out[name] = repeated_to_json(msg, fd);
    return;
  }
  bool in_oneof = fd->containing_oneof() != nullptr;
  bool is_message = fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
  if ((in_oneof || is_message) && !refl->HasField(msg, fd)) return;
  if (fd->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING
      && ends_with_json(name)) {
    auto key = name.substr(0, name.size() - json_suffix.size());
    out[key] = embedded_json(refl->GetString(msg, fd));
    return;
  }
  out[name] = scalar_to_json(msg, fd);
}

} // namespace

json message_to_json(const pb::Message& msg) {
  auto out = json::object();
  auto* desc = msg.GetDescriptor();
  for (int i = 0; i < desc->field_count(); ++i)
    add_field(msg, desc->field(i), out);
  return out;
}

std::string event_type_name(const events::Event& ev) {
  auto* desc = ev.GetDescriptor();
  auto* oneof = desc->FindOneofByName("payload");
  if (oneof == nullptr) return "unknown";
  auto* fd = ev.GetReflection()->GetOneofFieldDescriptor(ev, oneof);
  return fd != nullptr ? fd->name() : "unknown";
}

json event_to_json(const events::Event& ev) {
  json out = json::object();
  out["seq"] = ev.seq();
  out["recorded_at_ms"] = ev.recorded_at_ms();
  out["type"] = event_type_name(ev);
  auto* oneof = ev.GetDescriptor()->FindOneofByName("payload");
  auto* fd = oneof != nullptr
               ? ev.GetReflection()->GetOneofFieldDescriptor(ev, oneof)
               : nullptr;
  if (fd == nullptr) return out;
  auto payload = message_to_json(ev.GetReflection()->GetMessage(ev, fd));
  for (auto& [key, value] : payload.items())
    out[key] = std::move(value);
  return out;
}

std::optional<json> parse_json_text(const std::string& text,
                                    const json& empty_value) {
  if (text.empty()) return empty_value;
  auto parsed = workflow::parse_json(text, "embedded JSON");
  if (!parsed) return std::nullopt;
  return std::move(parsed.value());
}

} // namespace cerebelum::api
