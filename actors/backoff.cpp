#include "actors/backoff.hpp"

#include <algorithm>
#include <functional>

namespace cerebelum::actors {

std::chrono::milliseconds backoff_delay(const backoff_policy& p, int attempt,
                                        std::string_view salt) {
  auto delay = p.first.count();
  for (int i = 0; i < attempt && delay < p.cap.count(); ++i)
    delay *= 2;
  delay = std::min<std::int64_t>(delay, p.cap.count());
  // Jitter: up to a fifth of the delay, from the salt and the attempt.
  auto h = std::hash<std::string_view>{}(salt)
           ^ (static_cast<std::size_t>(attempt) * 0x9e3779b97f4a7c15ULL);
  auto fifth = delay / 5;
  if (fifth > 0) delay -= static_cast<std::int64_t>(h % (fifth + 1));
  return std::chrono::milliseconds{std::max<std::int64_t>(delay, 1)};
}

} // namespace cerebelum::actors
