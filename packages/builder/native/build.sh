#!/bin/sh
# Compiles tsbuild-walk, the build-context lister (see walk.c), and tsbuild-copy, COPY's copier (see copy.c).
# Static when libc.a is there: no dynamic loader to run at every build.
set -e
cd "$(dirname "$0")"
mkdir -p build
cc -O2 -Wall -Wextra -pthread -static -o build/tsbuild-walk.tmp walk.c sha256.c 2>/dev/null ||
  cc -O2 -Wall -Wextra -pthread -o build/tsbuild-walk.tmp walk.c sha256.c
mv build/tsbuild-walk.tmp build/tsbuild-walk
cc -O2 -Wall -Wextra -pthread -static -o build/tsbuild-copy.tmp copy.c 2>/dev/null ||
  cc -O2 -Wall -Wextra -pthread -o build/tsbuild-copy.tmp copy.c
mv build/tsbuild-copy.tmp build/tsbuild-copy
