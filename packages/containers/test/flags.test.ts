// What `run` and `exec` flags become, without root or a store: -v specs (bind, named, anonymous
// volume, mode), --mount specs, -e / --env-file (K=V sets, K takes this process's value, an unset K is skipped).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerError, parseMount, parseVolume, readEnvFile } from '../src/index.js';
import { applyEnv } from '../src/env.js';

const dir = mkdtempSync(join(tmpdir(), 'containers-flags-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const volumes: [string, ReturnType<typeof parseVolume> | RegExp][] = [
  [`${dir}:/data`, { kind: 'bind', source: dir, target: '/data', readonly: false, create: true }],
  [`${dir}:/data/../etc/:ro`, { kind: 'bind', source: dir, target: '/etc', readonly: true, create: true }],
  ['cache:/var/cache:rw', { kind: 'volume', name: 'cache', target: '/var/cache', readonly: false }],
  ['/scratch', { kind: 'volume', target: '/scratch', readonly: false }],
  ['/scratch:ro', { kind: 'volume', target: '/scratch', readonly: true }],
  ['scratch', /a container path must be absolute/],
  ['cache:data', /the container path must be absolute/],
  // Made when the container starts, as docker makes it (test/run-mount.test.ts).
  [`${dir}/absent:/x`, { kind: 'bind', source: `${dir}/absent`, target: '/x', readonly: false, create: true }],
  ['bad name!:/x', /is not a valid volume name/],
  ['a:b:c:/x', /expected HOST:CONTAINER/],
];
for (const [spec, want] of volumes) {
  test(`-v ${spec}`, () => {
    if (want instanceof RegExp) {
      assert.throws(
        () => parseVolume(spec),
        (e: Error) => e instanceof ContainerError && want.test(e.message),
      );
    } else assert.equal(parseVolume(spec), want);
  });
}

// --mount specs as docker reads them (test/run-mount.test.ts runs them): the mount each one asks for.
const mounts: [string, ReturnType<typeof parseMount> | RegExp][] = [
  [`type=bind,src=${dir}/,dst=/m/`, { kind: 'bind', source: dir, target: '/m', readonly: false }],
  [
    `type=bind,src=${dir},dst=/m,bind-nonrecursive`,
    { kind: 'bind', source: dir, target: '/m', readonly: false, nonrecursive: true },
  ],
  ['dst=/data,src=v,volume-nocopy=1', { kind: 'volume', name: 'v', target: '/data', readonly: false, nocopy: true }],
  ['type=volume,dst=/data,volume-nocopy=false', { kind: 'volume', target: '/data', readonly: false }],
  ['type=tmpfs,dst=/t,tmpfs-size=1.5k', { kind: 'tmpfs', target: '/t', readonly: false, size: 1536 }],
  ['type=tmpfs,dst=/t,tmpfs-size=2 GiB,ro', { kind: 'tmpfs', target: '/t', readonly: true, size: 2 * 1024 ** 3 }],
  ['type=tmpfs,dst=/t,tmpfs-mode=1770,tmpfs-size=0', { kind: 'tmpfs', target: '/t', readonly: false, mode: 0o1770 }],
  ['type=tmpfs,dst=/t,tmpfs-mode=0o755', /^--mount type=tmpfs,dst=\/t,tmpfs-mode=0o755: invalid value for tmpfs-mode/],
  ['type=tmpfs,dst=/t,tmpfs-size=1.2.3', /invalid value for tmpfs-size: 1\.2\.3$/],
  // Beyond 2^53 - 1 a size is a float (1.1e+23), not a number of bytes the kernel can be given.
  [
    'type=tmpfs,dst=/t,tmpfs-size=9999999p',
    /^--mount type=tmpfs,dst=\/t,tmpfs-size=9999999p: invalid value for tmpfs-size: 9999999p$/,
  ],
  ['type=tmpfs,dst=/t,tmpfs-size=8192p', /invalid value for tmpfs-size: 8192p$/],
  ['type=bind,"src=/a""b",dst=/m', /bind source path does not exist: \/a"b$/],
  ['type=bind,"src=/a', /parse error on line 1, column 18: extraneous or missing " in quoted-field/],
  ['type=bind,"src=/a"x,dst=/m', /parse error on line 1, column 18: extraneous or missing " in quoted-field/],
];
for (const [spec, want] of mounts) {
  test(`--mount ${spec}`, () => {
    if (want instanceof RegExp) {
      assert.throws(
        () => parseMount(spec),
        (e: Error) => e instanceof ContainerError && want.test(e.message),
      );
    } else assert.equal(parseMount(spec), want);
  });
}

const envs: [string, string[], string[], string[]][] = [
  ['K=V appends', ['PATH=/bin'], ['A=1'], ['PATH=/bin', 'A=1']],
  ['an existing key keeps its place', ['A=1', 'B=2'], ['A=3'], ['A=3', 'B=2']],
  ['K alone takes the value from this process', [], ['TSB_FLAGS_SET'], ['TSB_FLAGS_SET=from-host']],
  ['K alone, unset here, is skipped', ['A=1'], ['TSB_FLAGS_UNSET'], ['A=1']],
  ['an empty value is a value', [], ['E='], ['E=']],
];
for (const [name, base, items, want] of envs) {
  test(`-e: ${name}`, () => {
    process.env.TSB_FLAGS_SET = 'from-host';
    delete process.env.TSB_FLAGS_UNSET;
    assert.equal(applyEnv(base, items), want);
  });
}

test('--env-file: comments and blank lines dropped, leading blanks trimmed, CRLF accepted', () => {
  const f = join(dir, 'env');
  writeFileSync(f, '# comment\r\nA=1\r\n\n   B=two words\nC\n');
  assert.equal(readEnvFile(f), ['A=1', 'B=two words', 'C']);
  assert.throws(
    () => readEnvFile(join(dir, 'none')),
    (e: Error) => /--env-file .*none/.test(e.message),
  );
});

test.run();
