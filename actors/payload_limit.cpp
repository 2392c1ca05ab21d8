#include "actors/payload_limit.hpp"

namespace cerebelum::actors {

std::optional<std::string> payload_over(std::string_view what, std::size_t size,
                                        std::size_t limit) {
  if (size <= limit) return std::nullopt;
  return std::string{what} + " is " + std::to_string(size)
         + " bytes, more than the limit of " + std::to_string(limit)
         + " bytes (--max-payload-bytes)";
}

} // namespace cerebelum::actors
