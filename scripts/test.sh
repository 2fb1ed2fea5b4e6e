#!/usr/bin/env bash
# Runs every test on a fresh Debian 12 machine: installs what the build needs,
# builds the dev preset and runs all its tests (unit, conformance, install,
# bench smoke), then builds the ASan+UBSan preset and runs unit and conformance
# under the sanitizers. Non-interactive; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh

echo "== dev build"
cmake --preset dev
cmake --build --preset dev
ctest --preset dev

echo "== asan build (AddressSanitizer + UndefinedBehaviorSanitizer)"
cmake --preset asan
cmake --build --preset asan
ctest --preset asan
