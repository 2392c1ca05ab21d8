#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "eventstore/store_decorator.hpp"

namespace cerebelum::eventstore {

/// Where an injected fault strikes an `append_batch`.
enum class fault_point : std::uint8_t {
  /// The batch fails before it reaches the store: nothing is written and the
  /// error says so (not possibly committed).
  /// Use case: a connection lost before COMMIT.
  before_commit,
  /// The batch commits in the wrapped store, then every append of it is
  /// reported as failed with `possibly_committed`.
  /// Use case: a connection lost while waiting for the COMMIT reply.
  after_commit,
};

/// One planned fault: strike the `on_call`-th `append_batch` call (1-based,
/// counted over the decorator's lifetime) at `point`.
struct fault_plan {
  std::uint64_t on_call = 1;
  fault_point point = fault_point::before_commit;
};

/// A decorator of `event_store` that injects append failures for tests.
/// Reads pass through unchanged.
class faulty_store final : public store_decorator {
 public:
  explicit faulty_store(std::shared_ptr<event_store> inner,
                        std::vector<fault_plan> plans = {});

  /// Adds a planned fault.
  void plan(fault_plan p);

  /// Number of `append_batch` calls so far.
  std::uint64_t calls() const;

  std::vector<append_result>
  append_batch(std::span<const append_request> reqs) override;

 private:
  mutable std::mutex mtx_;
  std::vector<fault_plan> plans_;
  std::uint64_t calls_ = 0;
};

} // namespace cerebelum::eventstore
