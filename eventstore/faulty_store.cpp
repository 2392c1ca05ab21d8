#include "eventstore/faulty_store.hpp"

#include <optional>
#include <string>

namespace cerebelum::eventstore {

faulty_store::faulty_store(std::shared_ptr<event_store> inner,
                           std::vector<fault_plan> plans)
  : store_decorator(std::move(inner)), plans_(std::move(plans)) {
  // nop
}

void faulty_store::plan(fault_plan p) {
  std::lock_guard guard{mtx_};
  plans_.push_back(p);
}

std::uint64_t faulty_store::calls() const {
  std::lock_guard guard{mtx_};
  return calls_;
}

std::vector<append_result>
faulty_store::append_batch(std::span<const append_request> reqs) {
  std::optional<fault_point> strike;
  std::uint64_t call = 0;
  {
    std::lock_guard guard{mtx_};
    call = ++calls_;
    for (const auto& p : plans_)
      if (p.on_call == call) strike = p.point;
  }
  if (!strike) return inner().append_batch(reqs);
  auto where = " (injected on append_batch call " + std::to_string(call) + ")";
  if (*strike == fault_point::before_commit)
    return std::vector<append_result>(
      reqs.size(), append_result{make_error(
                     errc::injected_fault,
                     "connection lost before commit" + where, true, false)});
  auto results = inner().append_batch(reqs);
  for (auto& r : results)
    if (r.ok())
      r = append_result{make_error(errc::injected_fault,
                                   "connection lost during commit" + where,
                                   true, true)};
  return results;
}

} // namespace cerebelum::eventstore
