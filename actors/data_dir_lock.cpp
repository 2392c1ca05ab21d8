#include "actors/data_dir_lock.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "actors/errc.hpp"
#include <caf/atom.hpp>

namespace cerebelum::actors {

namespace {

/// Owns the descriptors: closing them releases the locks.
struct lock_state {
  int dir_fd = -1;
  int file_fd = -1;
  std::filesystem::path path;

  lock_state() = default;
  lock_state(const lock_state&) = delete;
  lock_state& operator=(const lock_state&) = delete;

  ~lock_state() {
    if (file_fd >= 0) ::close(file_fd);
    if (dir_fd >= 0) {
      ::close(dir_fd);
      spdlog::debug("released {}", path.string());
    }
  }

  static constexpr const char* name = "data_dir_lock";
};

/// The pid written in the LOCK file at `path`, if any.
std::optional<std::string> pid_in_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[32] = {};
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  ::close(fd);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
    pid.pop_back();
  if (pid.empty()) return std::nullopt;
  return pid;
}

/// The pid of the process holding a `flock` on `fd`'s file, from the
/// kernel's table (/proc/locks: "1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE
/// 0 EOF", device numbers in hex). Unlike the LOCK file, it cannot be
/// deleted.
std::optional<std::string> pid_in_proc_locks(int fd) {
  struct ::stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  std::ifstream locks{"/proc/locks"};
  std::string line;
  std::optional<std::string> same_inode;
  while (std::getline(locks, line)) {
    std::istringstream in{line};
    std::string index, kind, mode, access, pid, where;
    in >> index >> kind;
    if (kind == "->")
      in >> kind; // a waiter, not a holder
    else if (kind == "FLOCK") {
      in >> mode >> access >> pid >> where;
      unsigned maj = 0;
      unsigned min = 0;
      unsigned long long ino = 0;
      if (std::sscanf(where.c_str(), "%x:%x:%llu", &maj, &min, &ino) != 3
          || ino != static_cast<unsigned long long>(st.st_ino))
        continue;
      if (maj == major(st.st_dev) && min == minor(st.st_dev)) return pid;
      // Overlay and FUSE file systems may report another device.
      same_inode = pid;
    }
  }
  return same_inode;
}

caf::behavior lock_holder(caf::stateful_actor<lock_state>* self, int dir_fd,
                          int file_fd, std::filesystem::path path) {
  self->state.dir_fd = dir_fd;
  self->state.file_fd = file_fd;
  self->state.path = std::move(path);
  return {
    [=](caf::get_atom) {
      return self->state.path.string();
    },
  };
}

caf::error locked_by_other(const std::filesystem::path& dir,
                           std::optional<std::string> holder) {
  return make_error(errc::data_dir_locked,
                    "data directory " + dir.string()
                      + " is in use by another node (pid "
                      + holder.value_or("unknown")
                      + "): stop that node first, or give this one "
                        "another --data-dir");
}

} // namespace

caf::expected<caf::actor>
spawn_data_dir_lock(caf::actor_system& sys, const std::filesystem::path& dir) {
  // The lock is on the directory itself: a file in it (LOCK) can be deleted
  // and created again by a second node, which would then lock a different
  // inode and run beside the first on the same store.
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0)
    return make_error(errc::data_dir_unusable, "cannot open data directory "
                                                 + dir.string() + ": "
                                                 + std::strerror(errno));
  if (::flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
    auto err = errno;
    std::optional<std::string> holder;
    if (err == EWOULDBLOCK) {
      holder = pid_in_proc_locks(dir_fd);
      if (!holder) holder = pid_in_file(dir / "LOCK");
    }
    ::close(dir_fd);
    if (err == EWOULDBLOCK) return locked_by_other(dir, std::move(holder));
    return make_error(errc::data_dir_unusable, "cannot lock data directory "
                                                 + dir.string() + ": "
                                                 + std::strerror(err));
  }
  // LOCK names the holder for operators, and its flock keeps out nodes of
  // earlier releases, which lock only that file.
  auto path = dir / "LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    auto err = std::string{std::strerror(errno)};
    ::close(dir_fd);
    return make_error(errc::data_dir_unusable,
                      "cannot open " + path.string() + ": " + err);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto holder = pid_in_proc_locks(fd);
    if (!holder) holder = pid_in_file(path);
    ::close(fd);
    ::close(dir_fd);
    return locked_by_other(dir, std::move(holder));
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0
      || ::pwrite(fd, pid.data(), pid.size(), 0)
           != static_cast<ssize_t>(pid.size())) {
    auto err = std::string{std::strerror(errno)};
    ::close(fd);
    ::close(dir_fd);
    return make_error(errc::data_dir_unusable,
                      "cannot write " + path.string() + ": " + err);
  }
  spdlog::debug("locked {}", dir.string());
  return sys.spawn(lock_holder, dir_fd, fd, dir);
}

} // namespace cerebelum::actors
