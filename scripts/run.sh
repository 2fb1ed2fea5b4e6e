#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what the build needs,
# builds DevCycle and runs `devcycle serve` on the embedded defaults (SQLite
# file ./devcycle.db, in-process bus, in-memory cache) at
# http://127.0.0.1:8080. The first start creates the admin account and prints
# its password once. Extra arguments go to the server, e.g. --listen
# 127.0.0.1:9000 or --database=sqlite::memory: (see `devcycle serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh
cmake --preset dev
cmake --build --preset dev --target devcycle_cli
exec build/dev/server/devcycle serve "$@"
