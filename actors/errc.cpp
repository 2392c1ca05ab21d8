#include "actors/errc.hpp"

#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace cerebelum::actors {

std::string to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::data_dir_unusable: return "data_dir_unusable";
    case errc::data_dir_locked: return "data_dir_locked";
  }
  return "unknown_errc";
}

caf::error make_error(errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), error_category,
                    caf::make_message(std::move(context))};
}

} // namespace cerebelum::actors
