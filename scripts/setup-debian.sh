#!/usr/bin/env bash
# Installs every system package DevCycle needs on Debian 12 (bookworm).
# Idempotent and non-interactive; uses sudo when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

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
  libpqxx-dev libpq-dev postgresql-15 postgresql-client-15
  libhiredis-dev redis-server redis-tools
  librdkafka-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libyaml-cpp-dev
  libsodium-dev libssl-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev swig
  openjdk-17-jre-headless maven kcat
  openssl wrk jq python3 python3-venv
)
# npm fetches Swagger UI for /docs; a machine with its own Node keeps it.
command -v npm >/dev/null || PACKAGES+=(npm)

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

# Python tools of the end-to-end tests (pytest, requests, openapi-core), in a
# venv of their own so that nothing touches the system's Python.
venv=.cache/e2e-venv
if [[ ! -x $venv/bin/python ]] || ! cmp -s tests/e2e/requirements.txt "$venv/requirements.txt"; then
  echo "setup-debian: creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/e2e/requirements.txt
  cp tests/e2e/requirements.txt "$venv/requirements.txt"
fi

# Swagger UI (swagger-ui-dist), served by devcycle serve at /docs.
if ! cmp -s server/web/package-lock.json server/web/node_modules/.devcycle-lock 2>/dev/null; then
  echo "setup-debian: npm ci in server/web"
  (cd server/web && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.devcycle-lock)
fi
