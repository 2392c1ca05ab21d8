#!/usr/bin/env bash
# Installs every Debian package Cerebelum needs, only if something is missing.
# Idempotent: when all packages are present it returns in well under a second.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libcaf-dev libpqxx-dev libpq-dev libspdlog-dev libfmt-dev catch2
  libprotobuf-dev protobuf-compiler libgrpc++-dev libgrpc-dev
  protobuf-compiler-grpc libssl-dev nlohmann-json3-dev libsqlite3-dev
  libyaml-cpp-dev libcli11-dev libcpp-httplib-dev libboost1.81-dev postgresql
  openssl
  python3-grpcio python3-protobuf clang-format procps iproute2 curl
  prometheus-cpp-dev
  clang-14 libclang-rt-14-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "==> installing missing packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "error: packages are missing and this is not root; run as root or" \
       "install them: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
