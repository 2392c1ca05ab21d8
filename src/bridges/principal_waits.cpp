#include "src/bridges/principal_waits.hpp"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/errc.hpp"

namespace cerebelum::api {

principal_waits::ticket::ticket(std::shared_ptr<principal_waits> owner,
                                std::string principal, std::size_t count)
  : owner_(std::move(owner)), principal_(std::move(principal)), count_(count) {
  // nop
}

principal_waits::ticket::ticket(ticket&& other) noexcept
  : owner_(std::move(other.owner_)),
    principal_(std::move(other.principal_)),
    count_(other.count_) {
  other.owner_.reset();
}

principal_waits::ticket&
principal_waits::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::move(other.owner_);
    principal_ = std::move(other.principal_);
    count_ = other.count_;
    other.owner_.reset();
  }
  return *this;
}

principal_waits::ticket::~ticket() {
  release();
}

void principal_waits::ticket::release() {
  if (auto owner = std::move(owner_)) owner->release(principal_, count_);
}

principal_waits::principal_waits(std::size_t limit)
  : limit_(std::max<std::size_t>(limit, 1)) {
  // nop
}

caf::expected<principal_waits::ticket>
principal_waits::admit(const std::string& principal) {
  if (principal.empty()) return ticket{};
  std::lock_guard<std::mutex> guard{mtx_};
  auto& e = by_principal_[principal];
  if (e.held < limit_) {
    ++e.held;
    return ticket{shared_from_this(), principal, 1};
  }
  count_refusal(principal, e);
  return actors::make_error(
    actors::errc::overloaded,
    "principal '" + principal + "' already holds " + std::to_string(limit_)
      + " waiting requests (waits, follows, task polls), the limit set by "
        "--max-waits-per-principal; retry once one of them has ended");
}

caf::expected<principal_waits::ticket>
principal_waits::admit(const std::string& principal, std::size_t n,
                       const std::string& what) {
  if (principal.empty() || n == 0) return ticket{};
  std::lock_guard<std::mutex> guard{mtx_};
  auto& e = by_principal_[principal];
  if (n <= limit_ && e.held <= limit_ - n) {
    e.held += n;
    return ticket{shared_from_this(), principal, n};
  }
  auto held = e.held;
  count_refusal(principal, e);
  if (held == 0) by_principal_.erase(principal);
  return actors::make_error(
    actors::errc::overloaded,
    what + " needs " + std::to_string(n) + " of the waiting requests of "
      + "principal '" + principal + "', which holds " + std::to_string(held)
      + " of the " + std::to_string(limit_)
      + " the limit set by --max-waits-per-principal allows (waits, follows, "
        "task polls, CAF workers' max_in_flight); retry once some have "
        "ended, or ask for fewer");
}

void principal_waits::count_refusal(const std::string& principal, entry& e) {
  if (e.refused++ == 0)
    spdlog::warn("principal '{}' holds {} of its {} waiting requests "
                 "(--max-waits-per-principal): more are refused while they "
                 "do not fit",
                 principal, e.held, limit_);
}

std::size_t principal_waits::held(const std::string& principal) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_principal_.find(principal);
  return i == by_principal_.end() ? 0 : i->second.held;
}

void principal_waits::release(const std::string& principal, std::size_t n) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_principal_.find(principal);
  if (i == by_principal_.end()) return; // cannot happen: a ticket counted
  auto& e = i->second;
  e.held -= std::min(n, e.held);
  if (e.refused > 0 && e.held <= limit_ / 2) {
    spdlog::info("principal '{}' is down to {} waiting requests; {} were "
                 "refused at the limit of {} (--max-waits-per-principal)",
                 principal, e.held, e.refused, limit_);
    e.refused = 0;
  }
  if (e.held == 0) by_principal_.erase(i);
}

} // namespace cerebelum::api
