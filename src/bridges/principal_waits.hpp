#pragma once

// How many waiting requests one principal may hold at once. A request that
// waits (a long-poll) holds no thread, but it holds a connection or a call
// and an entry in the engine or the task router until it ends; with
// `--auth token`, one token could hold any number of them and starve the
// others. Each principal may hold `limit`; the next is refused at once
// (HTTP 429, gRPC RESOURCE_EXHAUSTED) while other principals are served.
//
// Counted (docs/security.md, *Waiting requests*): HTTP
// `POST /v1/workflows/{name}/executions?wait=true` and
// `GET /v1/executions/{id}/events?follow=true`; gRPC
// AdminService/WaitForResult, AdminService/FollowExecution and
// WorkerService/PollTask; and a CAF worker's `max_in_flight` for as long as
// it is registered (the gateway keeps up to that many polls in the task
// router for it). Without tokens there is no principal and nothing is
// counted.
//
// The count is of requests, not connections: an HTTP connection's principal
// is known only once a request on it was read, and a connection may carry
// requests of several tokens one after another.

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <caf/expected.hpp>

namespace cerebelum::api {

/// The counts of waiting requests per principal (one per node, shared by
/// the HTTP and gRPC front ends and the CAF worker port). Thread-safe.
class principal_waits : public std::enable_shared_from_this<principal_waits> {
 public:
  /// One waiting request (or `n` places, see `admit`), counted until the
  /// ticket is released or destroyed. It keeps its counter alive: a wait may
  /// end after its server is gone.
  class ticket {
   public:
    /// Counts nothing (a request without a principal).
    ticket() = default;
    ticket(ticket&& other) noexcept;
    ticket& operator=(ticket&& other) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket();

    /// Stops counting the wait (idempotent): the request has been answered
    /// and the node holds nothing for it any more.
    void release();

   private:
    friend class principal_waits;
    ticket(std::shared_ptr<principal_waits> owner, std::string principal,
           std::size_t count);

    std::shared_ptr<principal_waits> owner_;
    std::string principal_;
    std::size_t count_ = 0;
  };

  /// At most `limit` (at least 1) waits per principal.
  explicit principal_waits(std::size_t limit);

  /// Counts one more wait of `principal`, or refuses it (`overloaded`,
  /// naming the principal, the limit and its flag) when the principal
  /// holds `limit` already. An empty principal (a node without tokens) is
  /// never refused and nothing is counted.
  [[nodiscard]] caf::expected<ticket> admit(const std::string& principal);

  /// Counts `n` places of `principal` at once (a CAF worker's
  /// `max_in_flight`: the polls the gateway may keep for it), all or none:
  /// refused (`overloaded`, naming `what`, the principal, what it holds,
  /// the limit and its flag) when they do not fit. As `admit` for an empty
  /// principal.
  [[nodiscard]] caf::expected<ticket>
  admit(const std::string& principal, std::size_t n, const std::string& what);

  /// The waits `principal` holds now.
  [[nodiscard]] std::size_t held(const std::string& principal) const;

  [[nodiscard]] std::size_t limit() const noexcept {
    return limit_;
  }

 private:
  /// A principal with waits. Refusals are logged once per episode at the
  /// limit: at the first refusal, and (with how many were refused) when the
  /// principal is down to half the limit again.
  struct entry {
    std::size_t held = 0;
    std::size_t refused = 0;
  };

  void release(const std::string& principal, std::size_t n);

  /// Logs the first refusal of an episode (the caller holds `mtx_`).
  void count_refusal(const std::string& principal, entry& e);

  const std::size_t limit_;
  mutable std::mutex mtx_;
  std::unordered_map<std::string, entry> by_principal_;
};

using principal_waits_ptr = std::shared_ptr<principal_waits>;

} // namespace cerebelum::api
