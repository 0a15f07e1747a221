// Device nodes and setuid files on the mounts a RUN step or a container gets (issue 14): CAP_MKNOD
// stays, so a node made on a bind of a host directory must not open the host's device, and a
// setuid-root file there must not run as root. Driven through the CLI: `tsbuild run -v` (bind and
// named volume) and `RUN --mount=type=cache`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, repo, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const dirs: string[] = [root];

/** The device the host's / is on, as glibc encodes dev_t. */
function rootDisk(): { major: number; minor: number } {
  const dev = statSync('/', { bigint: true }).dev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * A host device that the host itself reads through a node made in a directory next to the store
 * (so on a filesystem that honours device nodes): the disk first, then devices that leak host
 * state. Undefined where none does (then these rows prove nothing and say so).
 */
function readableHostDevice(): string | undefined {
  const d = tempDir('devprobe');
  dirs.push(d);
  const disk = rootDisk();
  for (const dev of [`b ${disk.major} ${disk.minor}`, 'c 7 0', 'c 1 1', 'c 1 11']) {
    const node = join(d, 'n');
    try {
      execFileSync('mknod', [node, ...dev.split(' ')]);
      const read = `timeout 2 head -c 16 ${node} 2>/dev/null | wc -c`;
      const n = execFileSync('sh', ['-c', read], { encoding: 'utf8' }).trim();
      if (n === '16') return dev;
    } catch {
      /* not this one */
    } finally {
      rmSync(node, { force: true });
    }
  }
  return undefined;
}

const device = readableHostDevice();
const readNode = (dir: string) =>
  `mknod ${dir}/n ${device} && n=$(timeout 2 head -c 16 ${dir}/n 2>/dev/null | wc -c) && echo "read=$n"`;

test.after(() => cleanup(...dirs));

test('tsbuild run -v HOSTDIR: a node for a host device cannot be read', () => {
  if (!device) return skip('this host reads no device through a node on its own filesystems', { required: false });
  const host = tempDir('bind');
  dirs.push(host);
  const r = ok(t(['run', '--rm', '-v', `${host}:/v`, Base, 'sh', '-c', readNode('/v')]));
  assert.is(r.stdout, 'read=0\n', `read ${device} through a node on a bind mount`);
});

test('tsbuild run -v VOLUME: a node for a host device cannot be read', () => {
  if (!device) return skip('this host reads no device through a node on its own filesystems', { required: false });
  const r = ok(t(['run', '--rm', '-v', 'devvol:/v', Base, 'sh', '-c', readNode('/v')]));
  assert.is(r.stdout, 'read=0\n', `read ${device} through a node on a volume`);
  ok(t(['volume', 'rm', 'devvol']));
});

test('RUN --mount=type=cache: a node for a host device cannot be read', () => {
  if (!device) return skip('this host reads no device through a node on its own filesystems', { required: false });
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN --mount=type=cache,target=/c ${readNode('/c')} > /result\n` });
  dirs.push(ctx);
  const out = tempDir('out');
  dirs.push(out);
  ok(t(['build', '-q', '-o', `type=local,dest=${out}`, ctx]));
  assert.is(execFileSync('cat', [join(out, 'result')], { encoding: 'utf8' }), 'read=0\n');
});

// /dev is a writable tmpfs (as runc makes it) that honours device nodes: there, the device allowlist
// (cgroup) alone keeps a node the command makes from opening the host's device. The standard nodes work.
const devRead = `${readNode('/dev')}; echo x > /dev/null && head -c 4 /dev/zero | wc -c`;

test('RUN: a node for a host device made in /dev cannot be read', () => {
  if (!device) return skip('this host reads no device through a node on its own filesystems', { required: false });
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN (${devRead}) > /result\n` });
  dirs.push(ctx);
  const out = tempDir('out');
  dirs.push(out);
  ok(t(['build', '-q', '-o', `type=local,dest=${out}`, ctx]));
  assert.is(execFileSync('cat', [join(out, 'result')], { encoding: 'utf8' }), 'read=0\n4\n');
});

test('tsbuild run and exec: a node for a host device made in /dev cannot be read', () => {
  if (!device) return skip('this host reads no device through a node on its own filesystems', { required: false });
  assert.is(ok(t(['run', '--rm', Base, 'sh', '-c', devRead])).stdout, 'read=0\n4\n', 'run');
  const id = ok(t(['run', '-d', Base, 'sleep', '300'])).stdout.trim();
  try {
    const r = ok(t(['exec', id, 'sh', '-c', devRead]));
    assert.is(r.stdout, 'read=0\n4\n', 'exec');
  } finally {
    t(['rm', '-f', id]);
  }
});

test('tsbuild run -u 1000 -v HOSTDIR: a setuid-root binary there runs as 1000', () => {
  if (!have('cc')) return skip('no C compiler (cc) to build the probe');
  const host = tempDir('suid');
  dirs.push(host);
  chmodSync(host, 0o755); // uid 1000 must reach the file
  const probe = join(repo, 'packages', 'sandbox', 'test', 'fixtures', 'probe.c');
  execFileSync('cc', ['-O2', '-static', '-o', join(host, 'probe'), probe]);
  chmodSync(join(host, 'probe'), 0o4755);
  const r = ok(t(['run', '--rm', '-u', '1000', '-v', `${host}:/s`, Base, '/s/probe', 'euid']));
  assert.is(r.stdout, 'euid=1000\n');
});

test.run();
