#include "actors/attempt_token.hpp"

namespace cerebelum::actors {

std::string external_token(const std::string& execution_id,
                           const std::string& token) {
  return std::to_string(execution_id.size()) + ":" + execution_id + ":" + token;
}

std::optional<attempt_ref> parse_external_token(const std::string& external) {
  auto colon = external.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 9)
    return std::nullopt;
  std::size_t len = 0;
  for (std::size_t i = 0; i < colon; ++i) {
    if (external[i] < '0' || external[i] > '9') return std::nullopt;
    len = len * 10 + static_cast<std::size_t>(external[i] - '0');
  }
  auto start = colon + 1;
  if (len == 0 || start + len + 1 >= external.size()
      || external[start + len] != ':')
    return std::nullopt;
  return attempt_ref{external.substr(start, len),
                     external.substr(start + len + 1)};
}

} // namespace cerebelum::actors
