#pragma once

// Scratch resources of integration tests: a temporary directory, a free
// loopback port and a raw connection to one.

#include <filesystem>

namespace cerebelum::test {

/// A temporary directory removed at destruction.
struct temp_dir {
  std::filesystem::path path;
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago, so that tests
/// running in parallel (and a node a developer runs) do not collide.
int free_port();

/// A TCP connection to 127.0.0.1:`port`: its descriptor (the caller closes
/// it), or -1 when the connection was refused.
int connect_loopback(int port);

} // namespace cerebelum::test
