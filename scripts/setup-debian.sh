#!/usr/bin/env bash
# Installs every system package DevCycle needs on Debian 12 (bookworm).
# Idempotent and non-interactive; uses sudo when not run as root.
set -euo pipefail

if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive

# Boost 1.81 comes from its versioned -dev package: the unversioned
# libboost-*-dev packages are 1.74, whose Asio does not build as C++20 with
# g++ 12, and they conflict with 1.81. Nothing below may pull them in.
# Java and Maven run the Kafka broker for tests (scripts/kafka.sh fetches
# its jars); kcat is the reference producer in the bus benchmark.
PACKAGES=(
  build-essential g++ cmake ninja-build ccache pkg-config clang-format git
  libboost1.81-dev
  libsqlite3-dev sqlite3
  libpqxx-dev libpq-dev
  libhiredis-dev
  librdkafka-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  libsodium-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev swig
  openjdk-17-jre-headless maven kcat
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup-debian: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup-debian: all packages present"
fi
