#!/usr/bin/env bash
# Installs what tsbuild needs on a fresh Debian 12 machine with Node 20, as root, then builds it.
# Idempotent: a second run only checks. `--test` adds what the test suite uses as independent
# consumers and peers (skopeo, umoci, a registry, dockerd, runc).
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc and libc6-dev build the sandbox's launcher and the context walker (static, from C); slirp4netns
# connects the private network of RUN steps and containers (the default network); ADD of a bzip2/xz
# file runs bzip2/xz to see whether its content is a tar (and GNU tar to unpack it); uidmap's
# newuidmap/newgidmap map a rootless user's subordinate id ranges (README.md, "Rootless").
# openssh-client: ssh-agent/ssh-add hold the key files given with --ssh ID=KEYFILE.
runtime=(busybox-static zstd pigz ca-certificates gcc libc6-dev slirp4netns bzip2 xz-utils uidmap openssh-client)
# e2fsprogs: mkfs.ext4 and lsattr for the ext4 image topdir.test mounts on a loop device. buildah and podman: the
# benchmark's peers (bench/run.mjs: build + push, run --rm), which reports them "not installed" when missing.
# qemu-user-static: the RUN steps of --platform linux/arm64 builds run under it (binfmt_misc, registered below).
testing=(skopeo umoci docker-registry apache2-utils runc iproute2 docker.io e2fsprogs buildah podman qemu-user-static acl strace)
want=("${runtime[@]}")
[[ "${1:-}" == "--test" ]] && want+=("${testing[@]}")

missing=()
for p in "${want[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rootless, slirp4netns opens /dev/net/tun as the user: udev makes it 0666, a machine without udev
# (a container, some VMs) leaves it 0600 and a rootless RUN step could not reach the network.
if [[ -c /dev/net/tun && "$(stat -c %a /dev/net/tun)" != 666 ]]; then chmod 0666 /dev/net/tun; fi

pnpm_version=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [[ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]]; then
  echo "setup: installing pnpm $pnpm_version"
  npm install -g --silent "pnpm@$pnpm_version" >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent
pnpm run --silent build
# The package's launcher (packages/builder/bin/tsbuild: it keeps NODE_EXTRA_CA_CERTS from slowing
# Node's start), called by a one-line wrapper rather than a symlink, so that it finds the CLI beside it.
printf '#!/bin/sh\nexec %q "$@"\n' "$PWD/packages/builder/bin/tsbuild" > /usr/local/bin/tsbuild.tmp
chmod 755 /usr/local/bin/tsbuild.tmp && mv /usr/local/bin/tsbuild.tmp /usr/local/bin/tsbuild
bash fixtures/busybox/make-rootfs.sh
bash fixtures/useradd/make-rootfs.sh # needs passwd (useradd), which Debian always has

# --platform tests: arm64 executables run through binfmt_misc's qemu-aarch64 handler (F flag: the
# kernel opens the emulator once, so it works inside a step's root). Registered here when the kernel
# lets us; when it does not, say so (the test then fails under CI=true rather than skip). The arm64
# base comes from Debian's arm64 busybox-static, which apt fetches once arm64 is a foreign architecture.
if [[ "${1:-}" == "--test" ]]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  bm=/proc/sys/fs/binfmt_misc
  [[ -e $bm/status ]] || mount -t binfmt_misc binfmt_misc "$bm" 2>/dev/null ||
    echo "setup: cannot mount $bm (not allowed here): arm64 RUN steps cannot be emulated" >&2
  if [[ -e $bm/register && ! -e $bm/qemu-aarch64 ]]; then
    /usr/lib/systemd/systemd-binfmt /usr/lib/binfmt.d/qemu-aarch64.conf 2>/dev/null ||
      cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$bm/register" ||
      echo "setup: cannot register the qemu-aarch64 binfmt handler: arm64 RUN steps cannot be emulated" >&2
  fi
  bash fixtures/busybox-arm64/make-rootfs.sh
fi
