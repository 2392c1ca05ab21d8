#include "src/bridges/caf/peer_subjects.hpp"

#include <utility>

namespace cerebelum::caf_guard {

peer_subjects::binding::binding(std::shared_ptr<peer_subjects> owner,
                                std::string address)
  : owner_(std::move(owner)), address_(std::move(address)) {
  // nop
}

peer_subjects::binding::binding(binding&& other) noexcept
  : owner_(std::move(other.owner_)), address_(std::move(other.address_)) {
  other.owner_.reset();
}

peer_subjects::binding&
peer_subjects::binding::operator=(binding&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = std::move(other.owner_);
    address_ = std::move(other.address_);
    other.owner_.reset();
  }
  return *this;
}

peer_subjects::binding::~binding() {
  reset();
}

void peer_subjects::binding::reset() {
  if (auto owner = std::move(owner_)) owner->unbind(address_);
}

peer_subjects::binding peer_subjects::bind(std::string address,
                                           std::string subject) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // An address is one live connection: a stale binding of a closed one
    // cannot survive its binding's destructor, so this replaces nothing.
    by_address_[address] = std::move(subject);
  }
  return binding{shared_from_this(), std::move(address)};
}

std::string peer_subjects::subject_of(const std::string& address) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_address_.find(address);
  return i == by_address_.end() ? std::string{} : i->second;
}

std::size_t peer_subjects::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return by_address_.size();
}

bool peer_subjects::claim_node(binding& b, const std::string& node) {
  if (!b.bound()) return false;
  std::lock_guard<std::mutex> guard{mtx_};
  auto [i, added] = nodes_.emplace(node, b.address_);
  if (!added && i->second != b.address_) return false;
  node_of_[b.address_] = node;
  return true;
}

void peer_subjects::unbind(const std::string& address) {
  std::lock_guard<std::mutex> guard{mtx_};
  by_address_.erase(address);
  if (auto i = node_of_.find(address); i != node_of_.end()) {
    nodes_.erase(i->second);
    node_of_.erase(i);
  }
}

} // namespace cerebelum::caf_guard
