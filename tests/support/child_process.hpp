#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cerebelum::test {

/// A real child process for integration and crash tests: started with
/// fork/exec, its stdout and stderr merged into one pipe that the test reads
/// line by line. Tests kill it for real (`kill_hard` sends SIGKILL).
class child_process {
 public:
  /// Starts `argv[0]` with the arguments `argv[1..]`.
  explicit child_process(std::vector<std::string> argv);

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Kills the process (SIGKILL) if it still runs and reaps it.
  ~child_process();

  pid_t pid() const {
    return pid_;
  }

  /// Reads output until a line contains `needle` or `timeout` passes or the
  /// output ends. Returns the matching line.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds timeout);

  /// Reads whatever output is available now, without waiting, so that a
  /// chatty child never blocks on a full pipe.
  void drain();

  /// Sends `sig` to the process.
  void signal(int sig);

  /// Sends SIGKILL and reaps the process.
  void kill_hard();

  /// Waits up to `timeout` for the process to exit; returns its exit code,
  /// 128 + signal number if a signal ended it, or nothing on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  /// Everything read from the process so far.
  const std::string& output() const {
    return output_;
  }

 private:
  /// Reads what is available within `timeout`; false once the pipe is closed.
  bool read_some(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string output_;
  size_t scanned_ = 0;
};

/// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), or -1.
long proc_status_kib(pid_t pid, const std::string& field);

} // namespace cerebelum::test
