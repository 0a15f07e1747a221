// Breakout attempts, as a table: each must fail or see only the sandbox.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostname } from 'node:os';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { sh, tmp, busyboxLower, listTree, type Result } from './helpers.js';
import type { SandboxSpec } from '../src/index.js';

const secret = join(tmp, 'host-secret.txt');
writeFileSync(secret, 'TOP-SECRET\n');
const hostName = hostname();

interface Attempt {
  name: string;
  cmd: string;
  spec?: Partial<SandboxSpec>;
  check: (r: Result) => void;
}

const attempts: Attempt[] = [
  {
    name: 'list processes: only the sandbox own',
    // A glob is a shell builtin: nothing else is forked while listing, so sh (PID 1) is alone.
    cmd: 'set -- /proc/[0-9]*; echo $*',
    check: (r) => assert.is(r.out, '/proc/1\n'),
  },
  {
    name: 'read a host file outside the root',
    cmd: `cat ${secret}; cat /../../../..${secret}; cat /proc/1/root${secret}; echo end`,
    check: (r) => assert.not.match(r.out + r.err, /TOP-SECRET/),
  },
  {
    name: 'see host mounts: only the sandbox mounts exist',
    cmd: "awk '{print $5}' /proc/self/mountinfo",
    check: (r) => {
      const allowed = /^\/(|proc(\/.*)?|dev(\/.*)?|sys(\/.*)?|etc\/(hosts|resolv\.conf|hostname))$/;
      for (const m of r.out.trim().split('\n')) assert.match(m, allowed, `unexpected mount ${m}`);
    },
  },
  {
    name: "change the host's hostname",
    cmd: 'hostname evil; echo $?',
    check: () => assert.is(hostname(), hostName),
  },
  {
    name: 'write into a lowerdir',
    cmd: 'echo pwned > /bin/busybox; echo pwned > /etc/passwd; echo $?',
    check: (r) => {
      assert.not.match(readFileSync(join(busyboxLower(), 'etc/passwd'), 'utf8'), /pwned/);
      assert.ok(listTree(r.root.upperdir).includes('etc/passwd'));
      assert.ok(readFileSync(join(busyboxLower(), 'bin/busybox')).length > 1000);
    },
  },
  {
    name: 'reach the host root through /proc/self/fd and /proc/1/fd',
    cmd:
      'for f in /proc/self/fd/* /proc/1/fd/* /proc/1/cwd /proc/1/root; do (cd $f 2>/dev/null && ls -d "$f/" && cat ./' +
      secret +
      '); done; ls -l /proc/self/fd/ /proc/1/fd/ 2>&1',
    check: (r) => {
      assert.not.match(r.out, /TOP-SECRET/);
      // Only stdio may be open in the command: no descriptor of the launcher leaks in.
      const fds = r.out.match(/ (\d+) -> /g) ?? [];
      assert.not.match(r.out, / [3-9] -> (?!\/proc)/, r.out);
      void fds;
    },
  },
  ...[3, 4, 5, 6, 7].map((fd): Attempt => ({
    name: `a cwd of /proc/self/fd/${fd} (CVE-2024-21626)`,
    cmd: `cat ..${secret} ../../../..${secret}; pwd`,
    spec: { cwd: `/proc/self/fd/${fd}` },
    check: (r) => {
      assert.not.match(r.out, /TOP-SECRET/);
      assert.ok(r.startError, `the command started in ${r.out}`);
    },
  })),
  {
    name: 'load a kernel module',
    cmd: 'echo junk > /tmp/m.ko; insmod /tmp/m.ko; grep CapEff /proc/self/status',
    check: (r) => {
      // EPERM without CAP_SYS_MODULE (some kernels answer ENOSYS first).
      assert.match(r.err, /not permitted|not support/i);
      const eff = BigInt('0x' + (r.out.match(/CapEff:\s+([0-9a-f]+)/) ?? [])[1]);
      assert.is(eff & (1n << 16n), 0n, 'CAP_SYS_MODULE held');
      assert.is(eff & (1n << 21n), 0n, 'CAP_SYS_ADMIN held');
    },
  },
  {
    name: 'mount a filesystem',
    cmd:
      'mkdir -p /mnt; mount -t tmpfs none /mnt && echo MOUNTED; mount --bind / /mnt && echo MOUNTED; unshare -m ' +
      'true && echo UNSHARED',
    check: (r) => assert.not.match(r.out, /MOUNTED|UNSHARED/),
  },
  {
    name: 'gain capabilities in a new user namespace',
    cmd: 'unshare -U -r -m sh -c "mount -t tmpfs none /mnt && echo MOUNTED"; echo rc=$?',
    check: (r) => {
      assert.not.match(r.out, /MOUNTED/);
      assert.match(r.err, /not permitted/i);
    },
  },
  {
    name: 'write host-wide sysctls and sysfs',
    cmd:
      'echo "|/tmp/x" > /proc/sys/kernel/core_pattern && echo WROTE; echo 1 > /proc/sysrq-trigger && echo ' +
      'WROTE; echo x > /sys/kernel/uevent_helper && echo WROTE; cat /proc/kcore | head -c1 | wc -c',
    check: (r) => {
      assert.not.match(r.out, /WROTE/);
      assert.not.match(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), /\/tmp\/x/);
    },
  },
  {
    name: "network 'none' has only a working loopback",
    cmd: 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "; ping -c1 -W1 127.0.0.1 >/dev/null && echo LO-OK',
    check: (r) => assert.is(r.out, 'lo\nLO-OK\n'),
  },
  {
    name: 'mknod a host disk and read it',
    cmd: 'mknod /tmp/disk b 253 0 && head -c 16 /tmp/disk | wc -c; mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem | wc -c',
    check: (r) => assert.not.match(r.out, /^16$|^1$/m, 'device read: ' + r.out),
  },
];

for (const a of attempts) {
  test(`isolation: ${a.name}`, async () => {
    const r = await sh(a.cmd, a.spec);
    a.check(r);
  });
}

test('isolation: the secret file is still intact on the host', () => {
  assert.ok(existsSync(secret));
});

test.run();
