#include "supervision/errc.hpp"

#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace cerebelum::supervision {

std::string to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::empty_child_id: return "empty_child_id";
    case errc::duplicate_child_id: return "duplicate_child_id";
    case errc::missing_start_function: return "missing_start_function";
    case errc::invalid_restart_type: return "invalid_restart_type";
    case errc::invalid_shutdown: return "invalid_shutdown";
    case errc::invalid_child_type: return "invalid_child_type";
    case errc::invalid_strategy: return "invalid_strategy";
    case errc::invalid_intensity: return "invalid_intensity";
    case errc::invalid_period: return "invalid_period";
    case errc::invalid_simple_spec: return "invalid_simple_spec";
    case errc::failed_to_start_child: return "failed_to_start_child";
    case errc::running: return "running";
    case errc::restarting: return "restarting";
    case errc::not_found: return "not_found";
    case errc::already_present: return "already_present";
    case errc::already_started: return "already_started";
    case errc::simple_one_for_one: return "simple_one_for_one";
    case errc::not_simple_one_for_one: return "not_simple_one_for_one";
    case errc::reached_max_restart_intensity:
      return "reached_max_restart_intensity";
  }
  return "unknown_errc";
}

caf::error make_error(errc x) {
  return caf::error{static_cast<uint8_t>(x), error_category};
}

caf::error make_error(errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), error_category,
                    caf::make_message(std::move(context))};
}

bool is(const caf::error& err, errc x) {
  return err && err.category() == error_category
         && err.code() == static_cast<uint8_t>(x);
}

} // namespace cerebelum::supervision
