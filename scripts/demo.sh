#!/usr/bin/env bash
# Installs everything, builds the fixture images and runs one: tsbuild's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
tsbuild build -t tsbuild/busybox:1 fixtures/busybox
tsbuild build -t hello:1 fixtures/hello
tsbuild run --rm hello:1
