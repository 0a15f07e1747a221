#!/usr/bin/env bash
# Makes bench/data/debian-rootfs.tar: `debootstrap --variant=minbase bookworm` from the mirror in apt's
# configured sources, packed sorted, with numeric owners
# (files keep their package timestamps). Cached: a second run does nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/data/debian-rootfs.tar"
[[ -s $out ]] && { echo "gen-debian: cached $out"; exit 0; }
mirror=$( { grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
  | grep -oE 'https?://[^ ]*/debian/?$|https?://[^ ]*/debian/? ' | grep -v security | head -1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$here/data" "$here/work"
tmp=$(mktemp -d "$here/work/debootstrap.XXXX"); trap 'rm -rf "$tmp"' EXIT
# The bench installs what it needs itself, as run.mjs does for `time`: debootstrap is no runtime or test package.
if ! command -v debootstrap > /dev/null; then
  echo "gen-debian: installing debootstrap"
  apt-get install -y -qq debootstrap > /dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq debootstrap > /dev/null; }
fi
echo "gen-debian: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" > "$tmp/log" 2>&1 || { tail -20 "$tmp/log"; exit 1; }
rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"* "$tmp/root/var/log/"*.log
tar --sort=name --numeric-owner --xattrs -C "$tmp/root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "gen-debian: wrote $out ($(du -h "$out" | cut -f1))"
