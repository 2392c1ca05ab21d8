#include "sdk/cpp/protocol.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace cerebelum::worker {

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

void add_protocol_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::cerebelum_worker>();
  cfg.add_error_category(error_category, [](uint8_t code, caf::atom_value,
                                            const caf::message& ctx) {
    auto result = "cafworker: " + to_string(static_cast<errc>(code));
    if (ctx.match_elements<std::string>())
      result += " (" + ctx.get_as<std::string>(0) + ")";
    return result;
  });
}

} // namespace cerebelum::worker
