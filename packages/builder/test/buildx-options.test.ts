// The values of buildx's build flags (src/cli/buildx-options.ts) and the refusal of the flags tsbuild
// lacks (FlagSpec.unsupported), as tables; no root, no build.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { codeOf } from '@tsbuild/errdefs';
import { parseArgs } from '../src/cli/args.js';
import { flagsOf } from '../src/cli/flags.js';
import { parseAddHosts, parseAnnotations, parseShmSize, parseUlimits } from '../src/cli/buildx-options.js';

/** The usage error fn throws (exit 2), or fails. */
function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.is(codeOf(e), 'invalid', String(e));
    return (e as Error).message;
  }
  assert.unreachable('no error');
  return '';
}

test('--annotation: buildx types and platforms; index types only with several platforms', () => {
  const rows: [string, Record<string, string>][] = [
    ['k=v', { k: 'v' }],
    ['manifest:k=v=w', { k: 'v=w' }],
    ['manifest[linux/amd64]:k=v', { k: 'v' }],
    ['manifest[linux/x86_64]:k=v', { k: 'v' }],
    ['manifest[linux/arm64]:k=v', {}],
    ['manifest[amd64]:k=v', { k: 'v' }],
    ['k=', { k: '' }],
  ];
  for (const [v, want] of rows) assert.equal(parseAnnotations([v], 'linux/amd64').manifest, want, v);
  // The variant counts, both sides normalized as containerd does (linux/arm is linux/arm/v7).
  const variants: [string, string, Record<string, string>][] = [
    ['manifest[linux/arm/v7]:k=v', 'linux/arm/v6', {}],
    ['manifest[linux/arm/v7]:k=v', 'linux/arm/v7', { k: 'v' }],
    ['manifest[linux/arm]:k=v', 'linux/arm/v7', { k: 'v' }],
    ['manifest[linux/arm64]:k=v', 'linux/arm64/v8', { k: 'v' }],
    ['manifest[linux/aarch64]:k=v', 'linux/arm64', { k: 'v' }],
  ];
  for (const [v, platform, want] of variants)
    assert.equal(parseAnnotations([v], platform).manifest, want, `${v} for ${platform}`);
  for (const v of ['index:k=v', 'manifest,index:k=v', 'index-descriptor:k=v', 'manifest-descriptor:k=v'])
    assert.match(
      usage(() => parseAnnotations([v], 'linux/amd64')),
      'are not supported',
      v,
    );
  // Several platforms: index and manifest-descriptor have a place; index-descriptor still not.
  const multi: [string, { manifest: object; index: object; manifestDescriptor: object }][] = [
    ['index:k=v', { manifest: {}, index: { k: 'v' }, manifestDescriptor: {} }],
    ['manifest,index:k=v', { manifest: { k: 'v' }, index: { k: 'v' }, manifestDescriptor: {} }],
    ['manifest-descriptor:k=v', { manifest: {}, index: {}, manifestDescriptor: { k: 'v' } }],
    ['manifest-descriptor[linux/arm64]:k=v', { manifest: {}, index: {}, manifestDescriptor: {} }],
  ];
  for (const [v, want] of multi) assert.equal(parseAnnotations([v], 'linux/amd64', true), want, v);
  for (const v of ['index-descriptor:k=v', 'index[linux/amd64]:k=v'])
    assert.match(
      usage(() => parseAnnotations([v], 'linux/amd64', true)),
      '--annotation',
      v,
    );
  for (const v of ['=v', 'k', 'bogus:k=v', 'has space=v'])
    assert.match(
      usage(() => parseAnnotations([v], 'linux/amd64')),
      `--annotation`,
      v,
    );
});

test('--add-host: HOST:IP and HOST=IP, IPv6 (bracketed too); bad ones name the value', () => {
  assert.equal(parseAddHosts(['a:1.2.3.4', 'b=fd00::1', 'c:[::1]', 'd:::2']), [
    { host: 'a', ip: '1.2.3.4' },
    { host: 'b', ip: 'fd00::1' },
    { host: 'c', ip: '::1' },
    { host: 'd', ip: '::2' },
  ]);
  for (const v of ['a', 'a:', ':1.2.3.4', 'a:999.1.1.1', 'a b:1.2.3.4'])
    assert.match(
      usage(() => parseAddHosts([v])),
      `--add-host "${v}"`,
    );
});

test('--ulimit: docker names, SOFT[:HARD], -1 unlimited, the last one per type wins', () => {
  assert.equal(parseUlimits(['nofile=10:20', 'core=-1', 'nproc=5', 'nofile=30']), [
    { resource: 7, soft: 30, hard: 30 },
    { resource: 4, soft: -1, hard: -1 },
    { resource: 6, soft: 5, hard: 5 },
  ]);
  assert.equal(parseUlimits(['stack=8:-1']), [{ resource: 3, soft: 8, hard: -1 }]);
  for (const v of ['nofile', 'nofile=a', 'as=1', 'nofile=-2', 'nofile=3:2', 'nofile=-1:5', 'NOFILE=1'])
    assert.match(
      usage(() => parseUlimits([v])),
      '--ulimit',
      v,
    );
});

test('--shm-size: docker sizes, powers of 1024', () => {
  const rows: [string, number][] = [
    ['1024', 1024],
    ['64m', 64 << 20],
    ['64M', 64 << 20],
    ['1g', 1 << 30],
    ['2gb', 2 * (1 << 30)],
    ['512k', 512 << 10],
    ['1.5m', 1.5 * (1 << 20)],
  ];
  for (const [v, want] of rows) assert.is(parseShmSize(v), want, v);
  for (const v of ['', 'm', '-1m', '0', 'lots'])
    assert.match(
      usage(() => parseShmSize(v)),
      '--shm-size',
      v,
    );
});

test('a buildx flag tsbuild lacks: refused by name, long or short, with or without a value', () => {
  const build = flagsOf('build');
  for (const [argv, shown] of [
    [['--sbom=true'], '--sbom'],
    [['--squash'], '--squash'],
    [['-m', '1g'], '-m (--memory)'],
    [['-qm1g'], '-m (--memory)'],
  ] as const)
    assert.ok(usage(() => parseArgs([...argv, '.'], build)).startsWith(`${shown}: not supported by tsbuild (`));
  // An implemented flag of the same name wins over its unsupported entry.
  assert.not.ok(
    flagsOf('build').some((f) => f.unsupported && build.some((g) => g !== f && g.name === f.name)),
    'no flag both implemented and refused',
  );
});

test.run();
