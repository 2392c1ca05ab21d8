#include "tests/support/child_process.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace cerebelum::test {

child_process::child_process(std::vector<std::string> argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    std::vector<char*> args;
    for (auto& arg : argv)
      args.push_back(arg.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  out_fd_ = fds[0];
}

child_process::~child_process() {
  if (!exited_) kill_hard();
  if (out_fd_ >= 0) ::close(out_fd_);
}

bool child_process::read_some(std::chrono::milliseconds timeout) {
  if (out_fd_ < 0) return false;
  pollfd pfd{out_fd_, POLLIN, 0};
  auto n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return true;
  char buf[4096];
  auto got = ::read(out_fd_, buf, sizeof(buf));
  if (got <= 0) {
    ::close(out_fd_);
    out_fd_ = -1;
    return false;
  }
  output_.append(buf, static_cast<size_t>(got));
  return true;
}

std::optional<std::string>
child_process::wait_for_line(const std::string& needle,
                             std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Scan complete lines not scanned before.
    for (auto eol = output_.find('\n', scanned_); eol != std::string::npos;
         eol = output_.find('\n', scanned_)) {
      auto line = output_.substr(scanned_, eol - scanned_);
      scanned_ = eol + 1;
      if (line.find(needle) != std::string::npos) return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !read_some(left)) return std::nullopt;
  }
}

void child_process::drain() {
  while (out_fd_ >= 0) {
    pollfd pfd{out_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) return;
    if (!read_some(std::chrono::milliseconds{0})) return;
  }
}

void child_process::signal(int sig) {
  if (!exited_) ::kill(pid_, sig);
}

void child_process::kill_hard() {
  if (exited_) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    // retry
  }
  exited_ = true;
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited_) {
    auto r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    // Drain output meanwhile so that the child never blocks on a full pipe.
    read_some(std::chrono::milliseconds{10});
  }
  while (read_some(std::chrono::milliseconds{0})) {
    // Collect the last words.
    if (out_fd_ < 0) break;
    pollfd pfd{out_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) break;
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::stol(line.substr(field.size() + 1));
  return -1;
}

} // namespace cerebelum::test
