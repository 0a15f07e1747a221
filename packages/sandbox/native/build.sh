#!/bin/sh
# Compiles the single-threaded launcher that does unshare/pivot_root for us.
# Static when libc.a is there: no dynamic loader to run on every sandbox start (a few ms here).
set -e
cd "$(dirname "$0")"
mkdir -p build
[ -f launcher.c ] || exit 0
cc -O2 -Wall -Wextra -static -o build/tsbuild-launcher.tmp launcher.c 2>/dev/null ||
  cc -O2 -Wall -Wextra -o build/tsbuild-launcher.tmp launcher.c
mv build/tsbuild-launcher.tmp build/tsbuild-launcher
