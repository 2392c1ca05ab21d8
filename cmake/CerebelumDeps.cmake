# Locates every third-party dependency once and exposes imported targets.
# All of them come from Debian 12 packages (see scripts/install-deps.sh).

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
# OpenSSL 3.0 (libssl-dev): token hashing (scrypt), random numbers (API
# tokens, lease secrets of actors/attempt_token.cpp), TLS.
find_package(OpenSSL REQUIRED)

# CAF 0.17.6: Debian ships neither a CMake config nor a .pc file.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
foreach(component core io openssl)
  find_library(CAF_${component}_LIBRARY caf_${component} REQUIRED)
  if(NOT TARGET caf::${component})
    add_library(caf::${component} SHARED IMPORTED)
    set_target_properties(caf::${component} PROPERTIES
      IMPORTED_LOCATION ${CAF_${component}_LIBRARY})
    # SYSTEM keeps CAF's own warnings out of -Werror builds.
    target_include_directories(caf::${component} SYSTEM INTERFACE
      ${CAF_INCLUDE_DIR})
    target_link_libraries(caf::${component} INTERFACE Threads::Threads)
  endif()
endforeach()
target_link_libraries(caf::io INTERFACE caf::core)
target_link_libraries(caf::openssl INTERFACE caf::io)

find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(nlohmann_json 3 CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
find_path(HTTPLIB_INCLUDE_DIR httplib.h)
# Boost.Beast and Asio (header-only): the HTTP server of the node's API.
find_package(Boost 1.81 CONFIG REQUIRED)
if(CEREBELUM_BUILD_TESTS)
  find_package(Catch2 2 CONFIG REQUIRED)
endif()
