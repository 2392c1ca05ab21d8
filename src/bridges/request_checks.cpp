#include "src/bridges/request_checks.hpp"

#include "actors/errc.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::api {

using actors::errc;
using actors::make_error;

caf::expected<actors::json>
parse_json_field(const std::string& field, const std::string& text,
                 const actors::json& empty_value, bool require_object) {
  if (text.empty()) return empty_value;
  auto doc = workflow::parse_json(text, field);
  if (!doc) return make_error(errc::invalid_argument, doc.error().message);
  auto parsed = std::move(doc.value());
  if (require_object && !parsed.is_object())
    return make_error(errc::invalid_argument,
                      field + ": must be a JSON object, got "
                        + std::string{parsed.type_name()});
  return parsed;
}

caf::error require_non_empty(const std::string& field,
                             const std::string& value) {
  if (value.empty())
    return make_error(errc::invalid_argument, field + ": must not be empty");
  return {};
}

caf::expected<std::optional<eventstore::execution_status>>
parse_status_filter(const std::string& text) {
  if (text.empty()) return std::optional<eventstore::execution_status>{};
  if (auto st = eventstore::parse_status(text))
    return std::optional<eventstore::execution_status>{*st};
  return make_error(errc::invalid_argument,
                    "status: unknown status '" + workflow::printable(text)
                      + "' (one of running, sleeping, awaiting_approval, "
                        "completed, failed, cancelled)");
}

caf::error check_new_execution_id(const std::string& id) {
  if (id.find('/') != std::string::npos || id == "." || id == "..")
    return make_error(errc::invalid_argument,
                      "execution_id: '" + workflow::printable(id, 60)
                        + "' could not be read back in a URL path (no '/', "
                          "not '.' or '..')");
  return {};
}

caf::error check_page_size(long long page_size) {
  if (page_size < 0 || page_size > 1000)
    return make_error(errc::invalid_argument,
                      "page_size: must be between 1 and 1000, got "
                        + std::to_string(page_size));
  return {};
}

std::chrono::milliseconds wait_limit(std::chrono::milliseconds asked) {
  return asked <= std::chrono::milliseconds{0} || asked > max_wait ? max_wait
                                                                   : asked;
}

} // namespace cerebelum::api
