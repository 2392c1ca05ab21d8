// Fuzzes the CAF guard's BASP checker (src/bridges/caf/basp_check.hpp) with
// arbitrary client -> server byte streams. The first input byte seeds how
// the rest is split into reads; the stream is checked once whole and once
// in those pieces, as a socket may deliver it. The checker must never
// crash, read out of bounds, forward more than it was given, or decide
// differently depending on how the stream was split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "src/bridges/caf/basp_check.hpp"

using namespace cerebelum::caf_guard;

namespace {

/// The gateway's actor id and a node actor awaiting one answer, as the
/// seed corpus addresses them.
constexpr std::uint64_t gateway = 17;
constexpr std::uint64_t asker = 23;

struct outcome {
  std::size_t forwarded = 0;
  bool refused = false;
};

basp_checker make_checker(const check_limits& limits) {
  basp_checker c{limits};
  c.allow_destination(gateway);
  c.allow_one_message_to(asker);
  return c;
}

/// Feeds `stream` in reads of sizes drawn from `seed`: bytes not forwarded
/// stay pending and are offered again with the next read, as the guard
/// does.
outcome feed_split(const check_limits& limits, const std::uint8_t* stream,
                   std::size_t size, std::uint32_t seed) {
  auto checker = make_checker(limits);
  outcome out;
  std::vector<std::uint8_t> pending;
  std::size_t pos = 0;
  while (pos < size) {
    seed = seed * 1103515245u + 12345u;
    auto chunk = std::min<std::size_t>(1 + (seed >> 16) % 67, size - pos);
    pending.insert(pending.end(), stream + pos, stream + pos + chunk);
    pos += chunk;
    auto v = checker.feed(pending.data(), pending.size());
    if (v.forward > pending.size()) std::abort();
    out.forwarded += v.forward;
    pending.erase(pending.begin(),
                  pending.begin() + static_cast<std::ptrdiff_t>(v.forward));
    if (v.error) {
      out.refused = true;
      break;
    }
  }
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  static const check_limits limits = [] {
    check_limits l;
    l.allowed_types = worker_type_names();
    return l;
  }();
  if (size == 0) return 0;
  std::uint32_t seed = data[0];
  const auto* stream = data + 1;
  auto n = size - 1;
  // A copy of exactly the stream, so that ASan sees a read past its end.
  std::vector<std::uint8_t> whole_input(stream, stream + n);
  auto whole = make_checker(limits);
  auto v = whole.feed(whole_input.data(), whole_input.size());
  if (v.forward > n) std::abort();
  auto split = feed_split(limits, stream, n, seed);
  if (split.forwarded != v.forward || split.refused != v.error.has_value())
    std::abort();
  return 0;
}
