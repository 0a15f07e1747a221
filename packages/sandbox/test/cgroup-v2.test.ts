// cgroup v2 paths: the device allowlist (a BPF program the launcher attaches to the run's cgroup)
// and freezing (cgroup.freeze). On a
// hybrid host (v1 controllers, a controller-less cgroup2 at /sys/fs/cgroup/unified) the v2 driver
// runs on that mount (TSBUILD_CGROUP2_ROOT), which is enough for runs without limits and for
// device programs. Every mount in the sandbox but /dev is nodev, so the program is checked the
// way the kernel applies it: a host shell joins the run's cgroup and opens nodes on a tmpfs that
// honours devices.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { skip } from '@tsbuild/testkit';
import { freezeSandbox, run } from '../src/index.js';
import { checkFreeze, freshRoot, sh, stateDir } from './helpers.js';

const pureV2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
const hybrid = !pureV2 && readFileSync('/proc/self/mountinfo', 'utf8').includes(' /sys/fs/cgroup/unified ');
const v2root = pureV2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
if (hybrid) process.env.TSBUILD_CGROUP2_ROOT = v2root;

/** Runs `script` in a host shell that first joins the cgroup of the sandbox whose init is `pid`. */
function inCgroupOf(pid: number, script: string): string {
  const path = readFileSync(`/proc/${pid}/cgroup`, 'utf8').match(/^0::(\/.*)$/m)?.[1];
  assert.ok(path?.startsWith('/tsbuild/'), `the sandbox is not in a v2 tsbuild cgroup: ${path}`);
  return execFileSync('sh', ['-c', `echo $$ > ${v2root}${path}/cgroup.procs && ${script}`], { encoding: 'utf8' });
}

const shm = '/dev/shm'; // a tmpfs without nodev on the host
const node = `${shm}/tsbuild-devices-v2-${process.pid}`;

test("cgroup v2: the device program allows runc's list and nothing else", async () => {
  if (!pureV2 && !hybrid) return skip('no cgroup2 hierarchy on this host', { required: false });
  // The row proves something only where the host itself reads the node (the console screen).
  execFileSync('mknod', [node, 'c', '7', '0']);
  try {
    const hostReads = execFileSync('sh', ['-c', `head -c 16 ${node} 2>/dev/null | wc -c`], { encoding: 'utf8' }).trim();
    if (hostReads !== '16') return skip(`this host cannot read c 7:0 through ${node} itself`, { required: false });
    const ac = new AbortController();
    let pid = 0;
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
        onStart: (p) => {
          pid = p;
          resolve();
        },
      }).catch(() => {});
    });
    let out: string;
    try {
      out = inCgroupOf(
        pid,
        `head -c 16 ${node} 2>/dev/null | wc -c; head -c 16 /dev/zero | wc -c; ` +
          `echo x > /dev/null && echo null-ok; mknod ${node}-b b 1 0 && echo mknod-ok; rm -f ${node}-b`,
      );
    } finally {
      ac.abort();
    }
    assert.is(out, '0\n16\nnull-ok\nmknod-ok\n');
  } finally {
    rmSync(node, { force: true });
  }
});

test('cgroup v2: the standard nodes still work inside the sandbox', async () => {
  if (!pureV2 && !hybrid) return skip('no cgroup2 hierarchy on this host', { required: false });
  const r = await sh(
    'head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok; [ -t 0 ] || true; ' +
      'mknod /tmp/n c 7 0 && echo mknod-ok',
  );
  assert.is(r.out, '4\nnull-ok\nmknod-ok\n', r.err);
});

test("cgroup v2: the run's own directory is /sys/fs/cgroup, read-only, at the namespace root", async () => {
  if (!pureV2 && !hybrid) return skip('no cgroup2 hierarchy on this host', { required: false });
  const r = await sh(
    'cat /proc/self/cgroup; test -f /sys/fs/cgroup/cgroup.procs && echo procs; ' +
      'find /sys/fs/cgroup -mindepth 1 -type d | wc -l; echo 0 > /sys/fs/cgroup/cgroup.procs || echo refused; ' +
      'mkdir /sys/fs/cgroup/sub || echo refused',
  );
  // The v2 hierarchy is the last line of /proc/self/cgroup (0::PATH); on a hybrid host the v1 lines
  // come first, also at their namespace roots.
  assert.match(r.out, /^0::\/\nprocs\n0\nrefused\nrefused\n$/m, r.out + r.err);
  assert.match(r.err, /Read-only file system/);
});

test('cgroup v2: freezeSandbox stops every process until thawed (cgroup.freeze)', async () => {
  if (!pureV2 && !hybrid) return skip('no cgroup2 hierarchy on this host', { required: false });
  const r = await checkFreeze(freezeSandbox);
  assert.ok(r.a !== '', 'the loop never counted');
  assert.is(r.b, r.a, 'the count moved while frozen');
  assert.ok(r.moved, 'the count did not move again after the thaw');
});

test.run();
