#include "src/bridges/caf/peer_subjects.hpp"

#include <utility>

namespace cerebelum::caf_guard {

peer_subjects::binding::binding(std::shared_ptr<peer_subjects> owner,
                                std::uint64_t id)
  : owner_(std::move(owner)), id_(id) {
  // nop
}

peer_subjects::binding::binding(binding&& other) noexcept
  : owner_(std::move(other.owner_)), id_(other.id_) {
  other.owner_.reset();
}

peer_subjects::binding&
peer_subjects::binding::operator=(binding&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = std::move(other.owner_);
    id_ = other.id_;
    other.owner_.reset();
  }
  return *this;
}

peer_subjects::binding::~binding() {
  reset();
}

void peer_subjects::binding::reset() {
  if (auto owner = std::move(owner_)) owner->unbind(id_);
}

peer_subjects::binding peer_subjects::bind(std::string subject) {
  std::uint64_t id = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    id = ++last_id_;
    bound_.emplace(id, entry{std::move(subject), {}});
  }
  return binding{shared_from_this(), id};
}

bool peer_subjects::claim_node(binding& b, const std::string& node) {
  if (!b.bound()) return false;
  std::lock_guard<std::mutex> guard{mtx_};
  auto mine = bound_.find(b.id_);
  if (mine == bound_.end()) return false;
  auto [i, added] = nodes_.emplace(node, b.id_);
  if (!added && i->second != b.id_) return false;
  mine->second.node = node;
  return true;
}

std::string peer_subjects::subject_of_node(const std::string& node) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = nodes_.find(node);
  if (i == nodes_.end()) return {};
  auto e = bound_.find(i->second);
  return e == bound_.end() ? std::string{} : e->second.subject;
}

std::size_t peer_subjects::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return bound_.size();
}

void peer_subjects::unbind(std::uint64_t id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = bound_.find(id);
  if (i == bound_.end()) return;
  if (!i->second.node.empty()) {
    auto n = nodes_.find(i->second.node);
    if (n != nodes_.end() && n->second == id) nodes_.erase(n);
  }
  bound_.erase(i);
}

} // namespace cerebelum::caf_guard
