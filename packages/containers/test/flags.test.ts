// What `run` and `exec` flags become, without root or a store: -v specs (bind, named, anonymous
// volume, mode), -e / --env-file (K=V sets, K takes this process's value, an unset K is skipped).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerError, parseVolume, readEnvFile } from '../src/index.js';
import { applyEnv } from '../src/env.js';

const dir = mkdtempSync(join(tmpdir(), 'containers-flags-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const volumes: [string, ReturnType<typeof parseVolume> | RegExp][] = [
  [`${dir}:/data`, { kind: 'bind', source: dir, target: '/data', readonly: false }],
  [`${dir}:/data/../etc/:ro`, { kind: 'bind', source: dir, target: '/etc', readonly: true }],
  ['cache:/var/cache:rw', { kind: 'volume', name: 'cache', target: '/var/cache', readonly: false }],
  ['/scratch', { kind: 'volume', target: '/scratch', readonly: false }],
  ['/scratch:ro', { kind: 'volume', target: '/scratch', readonly: true }],
  ['scratch', /a container path must be absolute/],
  ['cache:data', /the container path must be absolute/],
  [`${dir}/absent:/x`, /bind source path does not exist/],
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
