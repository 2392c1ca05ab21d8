#include "wire/wire.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/make_message.hpp>
#include <google/protobuf/stubs/logging.h>

#include <utility>

namespace cerebelum::wire {

namespace {

template <std::uint16_t... Is>
void add_block_names(std::set<std::string, std::less<>>& out,
                     std::integer_sequence<std::uint16_t, Is...>) {
  constexpr auto first = caf::id_block::cerebelum_wire::begin;
  (out.emplace(caf::type_name_by_id<first + Is>::value), ...);
}

} // namespace

std::string to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::invalid_argument: return "invalid_argument";
    case errc::unknown_worker: return "unknown_worker";
    case errc::stale_attempt: return "stale_attempt";
    case errc::already_registered: return "already_registered";
    case errc::unavailable: return "unavailable";
    case errc::connection_lost: return "connection_lost";
    case errc::internal: return "internal";
    case errc::malformed_message: return "malformed_message";
    case errc::unauthenticated: return "unauthenticated";
    case errc::permission_denied: return "permission_denied";
    case errc::resource_exhausted: return "resource_exhausted";
  }
  return "unknown_errc";
}

caf::error make_error(errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), error_category,
                    caf::make_message(std::move(context))};
}

errc error_code(const caf::error& err) {
  if (!err) return errc::none;
  if (err.category() != error_category) return errc::internal;
  return static_cast<errc>(err.code());
}

std::string render_error(caf::actor_system& sys, const caf::error& err) {
  if (!err) return "none";
  if (err.category() != error_category) return sys.render(err);
  auto result = to_string(static_cast<errc>(err.code()));
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string>())
    result += ": " + ctx.get_as<std::string>(0);
  return result;
}

caf::error decode(google::protobuf::MessageLite& x, const std::string& bytes) {
  if (bytes.size() > max_message_bytes)
    return make_error(errc::malformed_message,
                      x.GetTypeName() + " of " + std::to_string(bytes.size())
                        + " bytes (limit " + std::to_string(max_message_bytes)
                        + ")");
  // The bytes come from an unauthenticated peer: libprotobuf would log a
  // line for each bad string field (invalid UTF-8); the error says enough.
  google::protobuf::LogSilencer quiet;
  if (!x.ParseFromString(bytes))
    return make_error(errc::malformed_message, std::to_string(bytes.size())
                                                 + " bytes that are not a "
                                                 + x.GetTypeName());
  return caf::none;
}

caf::error encode(const google::protobuf::MessageLite& x, std::string& out) {
  auto size = x.ByteSizeLong();
  if (size > max_message_bytes)
    return make_error(errc::malformed_message,
                      x.GetTypeName() + " of " + std::to_string(size)
                        + " bytes (limit " + std::to_string(max_message_bytes)
                        + ")");
  if (!x.SerializeToString(&out))
    return make_error(errc::malformed_message,
                      "cannot serialize a " + x.GetTypeName());
  return caf::none;
}

void add_wire_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::cerebelum_wire>();
  cfg.add_error_category(error_category, [](uint8_t code, caf::atom_value,
                                            const caf::message& ctx) {
    auto result = "cafworker: " + to_string(static_cast<errc>(code));
    if (ctx.match_elements<std::string>())
      result += " (" + ctx.get_as<std::string>(0) + ")";
    return result;
  });
}

std::set<std::string, std::less<>> type_names() {
  std::set<std::string, std::less<>> names;
  constexpr auto count = caf::id_block::cerebelum_wire::end
                         - caf::id_block::cerebelum_wire::begin;
  add_block_names(names, std::make_integer_sequence<std::uint16_t, count>{});
  return names;
}

} // namespace cerebelum::wire
