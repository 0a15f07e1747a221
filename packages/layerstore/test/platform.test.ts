// Platform selection from an index: containerd's default matcher, as a table.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { choosePlatform, normalizePlatform, platformMatches, type Platform } from '../src/platform.js';

const p = (s: string): Platform => {
  const [os, architecture, variant] = s.split('/');
  return variant ? { os: os, architecture: architecture, variant } : { os: os, architecture: architecture };
};

const matches: [want: string, entry: string | undefined, match: boolean][] = [
  ['linux/amd64', 'linux/amd64', true],
  ['linux/amd64', 'linux/x86_64', true],
  ['linux/amd64', 'linux/amd64/v1', true],
  ['linux/amd64', 'linux/amd64/v2', false], // needs a newer CPU than v1
  ['linux/amd64', 'linux/arm64', false],
  ['linux/amd64', 'windows/amd64', false],
  ['linux/amd64', 'Linux/AMD64', true],
  ['linux/amd64', 'unknown/unknown', false], // BuildKit's attestation manifests
  ['linux/amd64', undefined, true], // no platform object: containerd keeps it
  ['linux/arm64', 'linux/arm64/v8', true],
  ['linux/arm64', 'linux/aarch64', true],
  ['linux/arm64/v8', 'linux/arm64', true],
  ['linux/arm64', 'linux/arm/v8', false],
  ['linux/arm', 'linux/arm/v7', true],
  ['linux/arm', 'linux/arm/v6', false],
  ['linux/arm/v6', 'linux/armel', true],
  ['linux/arm/7', 'linux/armhf', true],
  ['linux/386', 'linux/i386', true],
  ['darwin/arm64', 'macos/arm64', true],
];
for (const [want, entry, match] of matches)
  test(`platformMatches(${want}, ${entry ?? 'none'}) = ${match}`, () =>
    assert.is(platformMatches(p(want), entry === undefined ? undefined : p(entry)), match));

test('normalizePlatform: default variants and aliases', () => {
  assert.equal(normalizePlatform(p('linux/aarch64')), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.equal(normalizePlatform(p('linux/x86_64/v1')), { os: 'linux', architecture: 'amd64' });
  assert.equal(normalizePlatform(p('linux/arm')), { os: 'linux', architecture: 'arm', variant: 'v7' });
});

const index = [
  { digest: 'att', platform: p('unknown/unknown') },
  { digest: 'arm', platform: p('linux/arm/v7') },
  { digest: 'arm64', platform: p('linux/arm64/v8') },
  { digest: 'amd64', platform: p('linux/amd64') },
  { digest: 'amd64-again', platform: p('linux/amd64') },
];
const picks: [want: string, digest: string | undefined][] = [
  ['linux/amd64', 'amd64'], // the first of equals, in the index's order
  ['linux/arm64', 'arm64'],
  ['linux/arm', 'arm'],
  ['linux/riscv64', undefined], // no fallback to "the only" or "the first" entry
];
for (const [want, digest] of picks)
  test(`choosePlatform(index, ${want})`, () => assert.is(choosePlatform(index, p(want))?.digest, digest));

test('an index of one entry for another platform is not picked', () =>
  assert.is(choosePlatform([{ platform: p('linux/arm64') }], p('linux/amd64')), undefined));

test.run();
