#include "supervision/child_spec.hpp"

#include <unordered_set>

#include <caf/error.hpp>
#include <caf/exit_reason.hpp>

#include "supervision/errc.hpp"

namespace cerebelum::supervision {

caf::error validate(const child_spec& spec) {
  if (spec.id.empty()) return make_error(errc::empty_child_id);
  if (!spec.start) return make_error(errc::missing_start_function, spec.id);
  switch (spec.restart) {
    case restart_type::permanent:
    case restart_type::transient:
    case restart_type::temporary: break;
    default: return make_error(errc::invalid_restart_type, spec.id);
  }
  switch (spec.type) {
    case child_type::worker:
    case child_type::supervisor: break;
    default: return make_error(errc::invalid_child_type, spec.id);
  }
  if (spec.shutdown) {
    switch (spec.shutdown->what) {
      case shutdown_policy::kind::brutal_kill:
      case shutdown_policy::kind::infinity: break;
      case shutdown_policy::kind::timeout:
        if (spec.shutdown->timeout.count() < 0)
          return make_error(errc::invalid_shutdown, spec.id);
        break;
      default: return make_error(errc::invalid_shutdown, spec.id);
    }
  }
  return caf::none;
}

caf::error validate(const supervisor_config& cfg) {
  const auto& flags = cfg.flags;
  switch (flags.strategy) {
    case restart_strategy::one_for_one:
    case restart_strategy::one_for_all:
    case restart_strategy::rest_for_one:
    case restart_strategy::simple_one_for_one: break;
    default: return make_error(errc::invalid_strategy, cfg.name);
  }
  if (flags.intensity < 0) return make_error(errc::invalid_intensity, cfg.name);
  if (flags.period.count() <= 0)
    return make_error(errc::invalid_period, cfg.name);
  if (flags.strategy == restart_strategy::simple_one_for_one
      && cfg.children.size() != 1)
    return make_error(errc::invalid_simple_spec, cfg.name);
  std::unordered_set<std::string> ids;
  for (const auto& spec : cfg.children) {
    if (auto err = validate(spec)) return err;
    if (!ids.insert(spec.id).second)
      return make_error(errc::duplicate_child_id, spec.id);
  }
  return caf::none;
}

bool is_normal_exit(const caf::error& reason) {
  return !reason || reason == caf::exit_reason::normal
         || reason == caf::exit_reason::user_shutdown;
}

std::string to_string(restart_type x) {
  switch (x) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "invalid_restart_type";
}

std::string to_string(restart_strategy x) {
  switch (x) {
    case restart_strategy::one_for_one: return "one_for_one";
    case restart_strategy::one_for_all: return "one_for_all";
    case restart_strategy::rest_for_one: return "rest_for_one";
    case restart_strategy::simple_one_for_one: return "simple_one_for_one";
  }
  return "invalid_strategy";
}

} // namespace cerebelum::supervision
