#include "actors/data_dir_lock.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <unistd.h>

#include "actors/errc.hpp"
#include <caf/atom.hpp>

namespace cerebelum::actors {

namespace {

/// Owns the descriptor: closing it releases the lock.
struct lock_state {
  int fd = -1;
  std::filesystem::path path;

  lock_state() = default;
  lock_state(const lock_state&) = delete;
  lock_state& operator=(const lock_state&) = delete;

  ~lock_state() {
    if (fd >= 0) {
      ::close(fd);
      spdlog::debug("released {}", path.string());
    }
  }

  static constexpr const char* name = "data_dir_lock";
};

std::string read_holder(int fd) {
  char buf[32] = {};
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
    pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

caf::behavior lock_holder(caf::stateful_actor<lock_state>* self, int fd,
                          std::filesystem::path path) {
  self->state.fd = fd;
  self->state.path = std::move(path);
  return {
    [=](caf::get_atom) {
      return self->state.path.string();
    },
  };
}

} // namespace

caf::expected<caf::actor>
spawn_data_dir_lock(caf::actor_system& sys, const std::filesystem::path& dir) {
  auto path = dir / "LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return make_error(errc::data_dir_unusable, "cannot open " + path.string()
                                                 + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto holder = read_holder(fd);
    ::close(fd);
    return make_error(errc::data_dir_locked,
                      "data directory " + dir.string()
                        + " is in use by another node (pid " + holder + ")");
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0
      || ::pwrite(fd, pid.data(), pid.size(), 0)
           != static_cast<ssize_t>(pid.size())) {
    auto err = std::string{std::strerror(errno)};
    ::close(fd);
    return make_error(errc::data_dir_unusable,
                      "cannot write " + path.string() + ": " + err);
  }
  spdlog::debug("locked {}", path.string());
  return sys.spawn(lock_holder, fd, path);
}

} // namespace cerebelum::actors
