#!/bin/sh
# Compiles the single-threaded launcher that does unshare/pivot_root for us.
set -e
cd "$(dirname "$0")"
mkdir -p build
[ -f launcher.c ] || exit 0
cc -O2 -Wall -Wextra -o build/tsbuild-launcher launcher.c
