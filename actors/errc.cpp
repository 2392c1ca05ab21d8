#include "actors/errc.hpp"

#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include "eventstore/result.hpp"

namespace cerebelum::actors {

std::string to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::data_dir_unusable: return "data_dir_unusable";
    case errc::data_dir_locked: return "data_dir_locked";
    case errc::not_found: return "not_found";
    case errc::unknown_workflow: return "unknown_workflow";
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_awaiting_approval: return "not_awaiting_approval";
    case errc::already_terminal: return "already_terminal";
    case errc::deadline_exceeded: return "deadline_exceeded";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
    case errc::store_damaged: return "store_damaged";
    case errc::not_retryable: return "not_retryable";
    case errc::payload_too_large: return "payload_too_large";
    case errc::overloaded: return "overloaded";
    case errc::unauthenticated: return "unauthenticated";
    case errc::permission_denied: return "permission_denied";
    case errc::not_transferable: return "not_transferable";
    case errc::incompatible: return "incompatible";
  }
  return "unknown_errc";
}

bool is_store_damage(const eventstore::error& err) {
  using eventstore::errc;
  return err.code == errc::corrupt_store || err.code == errc::corrupt_event
         || err.code == errc::unknown_event_type;
}

caf::error make_error(errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), error_category,
                    caf::make_message(std::move(context))};
}

errc api_error_code(const caf::error& err) {
  if (!err) return errc::none;
  if (err.category() != error_category) return errc::internal;
  return static_cast<errc>(err.code());
}

std::string api_error_message(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string>()) return ctx.get_as<std::string>(0);
  return caf::to_string(err);
}

} // namespace cerebelum::actors
