#include "supervision/messages.hpp"

#include <caf/actor_system_config.hpp>

#include "supervision/errc.hpp"

namespace cerebelum::supervision {

void add_supervision_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::cerebelum_supervision>();
  // The templated add_error_category<T> of CAF 0.17.6 does not compile.
  cfg.add_error_category(error_category, [](uint8_t code, caf::atom_value,
                                            const caf::message& ctx) {
    auto result = "supervise: " + to_string(static_cast<errc>(code));
    if (!ctx.empty()) {
      result += " (";
      result += ctx.match_element<std::string>(0) ? ctx.get_as<std::string>(0)
                                                  : caf::to_string(ctx);
      result += ")";
    }
    return result;
  });
}

} // namespace cerebelum::supervision
