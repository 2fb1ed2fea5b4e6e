#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what the build needs,
# builds DevCycle and runs it on the embedded defaults (SQLite file
# ./devcycle.db, in-process bus, in-memory cache). Extra arguments go to the
# program, e.g. --database=sqlite::memory: or --log-level=debug.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh
cmake --preset dev
cmake --build --preset dev --target quickstart
exec build/dev/examples/quickstart "$@"
