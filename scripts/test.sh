#!/usr/bin/env bash
# Installs everything (and builds), then runs every test suite. The last line is `N passed, M failed, K skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec node scripts/run-tests.mjs "$@"
