// Hardening against a hostile command (issue 14): device nodes and setuid binaries on bind mounts,
// the devices cgroup, io_uring, and the launcher's own process as seen from inside the sandbox.
// A static probe (fixtures/probe.c) makes the raw system calls busybox cannot.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, skip } from '@tsbuild/testkit';
import { exec, run } from '../src/index.js';
import { busyboxLower, freshRoot, sh, stateDir, tmp } from './helpers.js';

// Compiled to dist/test/: the source stays in test/fixtures.
const probeSource = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'probe.c');

let probeLayer: string | undefined;
/** A lowerdir holding /probe, compiled once per process (undefined without a C compiler). */
function probeLower(): string | undefined {
  if (probeLayer) return probeLayer;
  if (!have('cc')) return undefined;
  const dir = join(tmp, 'probe-layer');
  mkdirSync(dir, { recursive: true });
  execFileSync('cc', ['-O2', '-static', '-o', join(dir, 'probe'), probeSource]);
  probeLayer = dir;
  return dir;
}

/** The major:minor of the block device the host's / is on (what an attacker would open). */
function rootDisk(): { major: number; minor: number } {
  const dev = statSync('/', { bigint: true }).dev; // glibc's dev_t encoding
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function hostDir(name: string): string {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Bytes the host itself reads (up to 16) through a node `type major minor` made in `dir`. */
function hostReads(dir: string, type: 'b' | 'c', major: number, minor: number): number {
  const node = join(dir, `host-${type}${major}-${minor}`);
  try {
    execFileSync('mknod', [node, type, String(major), String(minor)]);
    const n = execFileSync('sh', ['-c', `timeout 2 head -c 16 ${node} 2>/dev/null | wc -c`], { encoding: 'utf8' });
    return n.trim() === '16' ? 16 : 0;
  } catch {
    return 0;
  } finally {
    rmSync(node, { force: true });
  }
}

const disk = rootDisk();
const hostDevices: { name: string; type: 'b' | 'c'; major: number; minor: number }[] = [
  { name: "the host's root disk", type: 'b', ...disk },
  { name: "the host's console screen (vcs)", type: 'c', major: 7, minor: 0 },
  { name: 'physical memory (/dev/mem)', type: 'c', major: 1, minor: 1 },
  { name: 'the kernel log (/dev/kmsg)', type: 'c', major: 1, minor: 11 },
];

// A row proves something only for a device the host itself can read through such a node (some VMs
// refuse block devices, /dev/mem or /dev/kmsg even to root): those are checked, the others are named
// and passed over, and at least one device must be checkable, or the test fails (never a silent pass).
test('a node for a host device made on a bind mount cannot be read', async () => {
  const checked: string[] = [];
  const unreadable: string[] = [];
  for (const d of hostDevices) {
    const src = hostDir(`dev-bind-${d.type}${d.major}-${d.minor}`);
    if (hostReads(src, d.type, d.major, d.minor) === 0) {
      unreadable.push(`${d.name} (${d.type} ${d.major}:${d.minor})`);
      continue;
    }
    const cmd = `mknod /cache/n ${d.type} ${d.major} ${d.minor} && timeout 2 head -c 16 /cache/n | wc -c; echo end`;
    const r = await sh(cmd, {
      mounts: [{ type: 'bind', source: src, target: '/cache' }],
    });
    assert.match(r.out, /end\n$/, r.err);
    assert.not.match(r.out, /^16$/m, `${d.name}: read through a node on a bind mount: ${r.out}${r.err}`);
    checked.push(d.name);
  }
  console.log(
    `  device nodes on a bind: checked ${checked.join(', ')}` +
      (unreadable.length ? `; not readable by the host itself here: ${unreadable.join(', ')}` : ''),
  );
  assert.ok(checked.length > 0, `no host device readable through a node here, so nothing was proved: ${unreadable}`);
});

test('a setuid-root binary on a bind mount runs without privileges', async () => {
  const lower = probeLower();
  if (!lower) return skip('no C compiler (cc) to build the probe');
  const dir = hostDir('suid-bind');
  copyFileSync(join(lower, 'probe'), join(dir, 'probe'));
  chownSync(join(dir, 'probe'), 0, 0);
  chmodSync(join(dir, 'probe'), 0o4755);
  const r = await sh('/s/probe euid', { uid: 1000, gid: 1000, mounts: [{ type: 'bind', source: dir, target: '/s' }] });
  assert.is(r.code, 0, r.err);
  assert.is(r.out, 'euid=1000\n');
});

test('bind mounts are nosuid and nodev, recursively, and keep ro', async () => {
  const r = await sh("awk '$5 ~ /^\\/(b|r)$/ {print $5, $6}' /proc/self/mountinfo", {
    mounts: [
      { type: 'bind', source: hostDir('flags-rw'), target: '/b' },
      { type: 'bind', source: hostDir('flags-ro'), target: '/r', readonly: true },
    ],
  });
  const lines = r.out.trim().split('\n').sort();
  assert.is(lines.length, 2, r.out + r.err);
  assert.match(lines[0], /^\/b rw,nosuid,nodev/);
  assert.match(lines[1], /^\/r ro,nosuid,nodev/);
});

test('io_uring is refused with EPERM, as Docker does', async () => {
  const lower = probeLower();
  if (!lower) return skip('no C compiler (cc) to build the probe');
  const r = await sh('/probe io_uring', { root: freshRoot([lower, busyboxLower()]) });
  assert.is(r.out, 'io_uring_setup=EPERM io_uring_enter=EPERM io_uring_register=EPERM\n', r.err);
});

// The filter judges x86_64 numbers: a call through another ABI must not get past it (x32 calls
// share the arch value and fail with EPERM; an ia32 call, int $0x80, kills the process: SIGSYS).
test('seccomp: x32 calls fail with EPERM (x86_64)', async () => {
  if (process.arch !== 'x64') return skip(`x32 exists on x86_64 only (this is ${process.arch})`, { required: false });
  const lower = probeLower();
  if (!lower) return skip('no C compiler (cc) to build the probe');
  const r = await sh('/probe x32', { root: freshRoot([lower, busyboxLower()]) });
  assert.is(r.out, 'x32=EPERM\n', r.err);
});

/**
 * Whether this machine runs an ia32 call at all, outside any sandbox: some virtual machines (and kernels
 * booted with ia32_emulation=0) kill a process at int $0x80 with SIGSEGV before any filter sees it.
 */
function hostRunsIa32(lower: string): boolean {
  try {
    return execFileSync(join(lower, 'probe'), ['ia32'], { encoding: 'utf8', stdio: 'pipe' }).startsWith('ia32=ran');
  } catch {
    return false;
  }
}

test('seccomp: an ia32 call kills the process with SIGSYS (x86_64)', async () => {
  if (process.arch !== 'x64') return skip(`ia32 exists on x86_64 only (this is ${process.arch})`, { required: false });
  const lower = probeLower();
  if (!lower) return skip('no C compiler (cc) to build the probe');
  // Where the host itself cannot make the call, the filter is never reached and there is nothing to prove.
  if (!hostRunsIa32(lower))
    return skip('this machine kills an ia32 call (int $0x80) outside the sandbox too', { required: false });
  const r = await sh('/probe ia32; echo "status=$?"', { root: freshRoot([lower, busyboxLower()]) });
  assert.is(r.out, 'status=159\n', r.err);
});

const runcDevices = [
  'c *:* m',
  'b *:* m',
  'c 1:3 rwm',
  'c 1:5 rwm',
  'c 1:7 rwm',
  'c 1:8 rwm',
  'c 1:9 rwm',
  'c 5:0 rwm',
  'c 5:1 rwm',
  'c 5:2 rwm',
  'c 10:200 rwm',
  'c 136:* rwm',
];

test("the devices cgroup allows runc's default list only", async () => {
  if (!existsSync('/sys/fs/cgroup/devices/devices.list')) {
    // v2 hosts: the list is a BPF program, checked by cgroup-v2.test.ts.
    return skip('no cgroup v1 devices controller on this host', { required: false });
  }
  const ac = new AbortController();
  let list = '';
  await new Promise<void>((resolve) => {
    void run({
      root: freshRoot(),
      argv: ['sleep', '60'],
      env: ['PATH=/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
      network: 'none',
      stateDir,
      signal: ac.signal,
      onStart: (pid) => {
        const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
          .split('\n')
          .find((l) => /^\d+:devices:/.test(l));
        const path = line?.split(':')[2] ?? '';
        list = readFileSync(`/sys/fs/cgroup/devices${path}/devices.list`, 'utf8');
        resolve();
      },
    }).catch(() => {});
  });
  ac.abort();
  assert.equal(list.trim().split('\n').sort(), [...runcDevices].sort());
  // And what the list is for: the standard nodes still work.
  const r = await sh('head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok');
  assert.is(r.out, '4\nnull-ok\n', r.err);
});

test("the sandbox's init (the launcher, with init) is a sealed in-memory copy, not open to the command", async () => {
  const lower = probeLower();
  if (!lower) return skip('no C compiler (cc) to build the probe');
  const ac = new AbortController();
  let exe = '';
  // The command sleeps until the init's exe is read: a command that ended at once could take init with it first.
  const done = run({
    root: freshRoot([lower, busyboxLower()]),
    argv: ['sleep', '60'],
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    network: 'none',
    init: true,
    stateDir,
    signal: ac.signal,
    onStart: (pid) => {
      exe = readlinkSync(`/proc/${pid}/exe`);
      ac.abort();
    },
  }).catch(() => {});
  await done;
  assert.match(exe, /^\/memfd:tsbuild-launcher/, exe);
  const r = await sh('/probe proc 1', { root: freshRoot([lower, busyboxLower()]), init: true });
  assert.is(r.out, 'exe=EACCES path=EACCES mem=EACCES\n', r.err);
});

test('exec: the launcher process entering the sandbox is not open to the sandbox (CVE-2019-5736)', async () => {
  const lower = probeLower();
  if (!lower) return skip('no C compiler (cc) to build the probe');
  // The probe holds a write lease on the binary exec runs: the exec'ing launcher child, already in
  // the sandbox's pid namespace, waits in execve until the probe has looked at it.
  const w = hostDir('lease');
  copyFileSync(join(lower, 'probe'), join(w, 'target'));
  const ac = new AbortController();
  let pid = 0;
  await new Promise<void>((resolve) => {
    void run({
      root: freshRoot([lower, busyboxLower()]),
      argv: ['sh', '-c', '/probe lease /w/target /w; exec sleep 60'],
      env: ['PATH=/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
      network: 'none',
      stateDir,
      signal: ac.signal,
      mounts: [{ type: 'bind', source: w, target: '/w' }],
      onStart: (p) => {
        pid = p;
        resolve();
      },
    }).catch(() => {});
  });
  for (let i = 0; i < 2000 && !existsSync(join(w, 'leased')); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(join(w, 'leased')), 'the probe did not take its lease');
  const e = await exec({ pid, argv: ['/w/target', 'euid'], env: [], cwd: '/', uid: 0, gid: 0 });
  ac.abort();
  assert.is(e.code, 0, e.startError);
  const report = readFileSync(join(w, 'report'), 'utf8');
  assert.match(report, /^pid=\d+ /, report);
  assert.match(report, / exe=E\w+ path=E\w+ mem=E\w+\n$/, `the launcher was reachable: ${report}`);
});

test.run();
