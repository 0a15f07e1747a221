#!/usr/bin/env bash
# Installs everything, builds the fixture images and runs one: tsbuild's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
tsbuild parse -f fixtures/hello/Dockerfile
