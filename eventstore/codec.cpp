#include "eventstore/codec.hpp"

#include <string>

namespace cerebelum::eventstore {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const google::protobuf::OneofDescriptor* payload_oneof() {
  static const auto* oneof
    = events::Event::descriptor()->FindOneofByName("payload");
  return oneof;
}

} // namespace

result<new_event> encode(const events::Event& ev) {
  const auto* refl = ev.GetReflection();
  const auto* field = refl->GetOneofFieldDescriptor(ev, payload_oneof());
  if (field == nullptr)
    return make_error(errc::invalid_argument,
                      "cannot encode an event without a payload");
  new_event out;
  out.type = field->number();
  out.recorded_at_ms = ev.recorded_at_ms();
  if (!refl->GetMessage(ev, field).SerializeToString(&out.payload))
    return make_error(errc::invalid_argument,
                      "cannot serialize event payload " + field->name());
  return out;
}

result<std::optional<events::Event>> decode(const stored_event& ev) {
  const auto* field = events::Event::descriptor()->FindFieldByNumber(ev.type);
  if (field == nullptr || field->containing_oneof() != payload_oneof()) {
    if (is_skippable_type(ev.type)) return std::optional<events::Event>{};
    // Not "written by a newer node": that node would have raised the schema
    // version, and this store's version was accepted at open.
    return make_error(errc::unknown_event_type,
                      "event seq " + std::to_string(ev.seq) + " has type code "
                        + std::to_string(ev.type)
                        + ", which store schema version "
                        + std::to_string(current_schema_version)
                        + " does not define: the stored event is damaged");
  }
  events::Event out;
  out.set_seq(ev.seq);
  out.set_recorded_at_ms(ev.recorded_at_ms);
  auto* msg = out.GetReflection()->MutableMessage(&out, field);
  if (!msg->ParseFromString(ev.payload))
    return make_error(errc::corrupt_event, "event seq " + std::to_string(ev.seq)
                                             + " of type " + field->name()
                                             + " has an unparsable payload: "
                                               "the stored event is damaged");
  return std::optional<events::Event>{std::move(out)};
}

result<std::size_t>
read_history(event_store& store, std::string_view execution_id,
             std::int64_t from_seq, const event_callback& fn) {
  std::optional<error> failure;
  std::size_t delivered = 0;
  auto res = store.read(execution_id, from_seq, [&](const stored_event& ev) {
    auto decoded = decode(ev);
    if (!decoded) {
      failure = std::move(decoded).err();
      return false;
    }
    if (!decoded->has_value()) return true;
    ++delivered;
    return fn(**decoded);
  });
  if (failure) return std::move(*failure);
  if (!res) return std::move(res).err();
  return delivered;
}

result<std::vector<events::Event>> history_of(event_store& store,
                                              std::string_view execution_id,
                                              std::int64_t from_seq) {
  std::vector<events::Event> out;
  auto n = read_history(store, execution_id, from_seq,
                        [&](const events::Event& ev) {
                          out.push_back(ev);
                          return true;
                        });
  if (!n) return std::move(n).err();
  return out;
}

} // namespace cerebelum::eventstore
