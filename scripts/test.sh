#!/usr/bin/env bash
# Installs everything, then runs every test suite. The last line is `N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec node scripts/run-tests.mjs "$@"
