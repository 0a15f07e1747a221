// The rootless cgroup decision (cgroup/delegation.ts) as a table: /proc/self/cgroup, mountinfo,
// what is writable and cgroup.controllers → delegated (where, which controllers) or why not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroup2Mount, planDelegation, type DelegationPlan } from '../src/cgroup/delegation.js';
import { INIT_LEAF, v2Driver } from '../src/cgroup/v2.js';

const pure = '30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n';
const hybrid =
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n' +
  '42 31 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n';
const v1only = '42 31 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n';
const userScope = '/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope';
const scopeDir = `/sys/fs/cgroup${userScope}`;

interface Row {
  name: string;
  cgroup: string;
  mountinfo: string;
  writable: string[];
  controllers?: string;
  want: DelegationPlan | RegExp;
}

const rows: Row[] = [
  {
    name: 'systemd Delegate=yes scope on a pure v2 host: delegated with its controllers',
    cgroup: `0::${userScope}\n`,
    mountinfo: pure,
    writable: [scopeDir, `${scopeDir}/cgroup.procs`, `${scopeDir}/cgroup.subtree_control`],
    controllers: 'cpu memory pids\n',
    want: { delegated: true, mount: '/sys/fs/cgroup', dir: scopeDir, controllers: ['cpu', 'memory', 'pids'] },
  },
  {
    name: 'in the leaf an earlier run moved the processes to (tsbuild-init): the delegation is still its parent',
    cgroup: `0::${userScope}/${INIT_LEAF}\n`,
    mountinfo: pure,
    writable: ['', '/cgroup.procs', '/cgroup.subtree_control'].flatMap((f) => [
      `${scopeDir}${f}`,
      `${scopeDir}/${INIT_LEAF}${f}`,
    ]),
    controllers: 'cpu memory pids\n',
    want: { delegated: true, mount: '/sys/fs/cgroup', dir: scopeDir, controllers: ['cpu', 'memory', 'pids'] },
  },
  {
    name: 'delegated on a hybrid host: the cgroup2 mount is /sys/fs/cgroup/unified, no controllers',
    cgroup: '9:name=systemd:/\n4:memory:/x\n0::/tsbuild-test-1\n',
    mountinfo: hybrid,
    writable: ['', '/cgroup.procs', '/cgroup.subtree_control'].map((f) => `/sys/fs/cgroup/unified/tsbuild-test-1${f}`),
    controllers: '\n',
    want: {
      delegated: true,
      mount: '/sys/fs/cgroup/unified',
      dir: '/sys/fs/cgroup/unified/tsbuild-test-1',
      controllers: [],
    },
  },
  {
    name: 'a session scope owned by root: not delegated, naming what is not writable',
    cgroup: '0::/user.slice/user-1000.slice/session-3.scope\n',
    mountinfo: pure,
    writable: [],
    want: /session-3\.scope is not delegated to you \(\., \/cgroup\.procs, \/cgroup\.subtree_control not writable\)/,
  },
  {
    name: 'the directory writable but not subtree_control: not delegated',
    cgroup: `0::${userScope}\n`,
    mountinfo: pure,
    writable: [scopeDir, `${scopeDir}/cgroup.procs`],
    want: /not delegated to you \(\/cgroup\.subtree_control not writable\)/,
  },
  {
    name: "this host's hybrid layout, in the root cgroup of the unified hierarchy: never delegated",
    cgroup: '9:name=systemd:/\n0::/\n',
    mountinfo: hybrid,
    writable: ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/unified/cgroup.procs'],
    want: /root of \/sys\/fs\/cgroup\/unified, not delegated/,
  },
  {
    name: 'cgroup v1 only: no 0:: line',
    cgroup: '4:memory:/x\n1:name=systemd:/\n',
    mountinfo: v1only,
    writable: [],
    want: /no cgroup v2 hierarchy/,
  },
  {
    name: 'a 0:: line but no cgroup2 mount to reach it',
    cgroup: '0::/a\n',
    mountinfo: v1only,
    writable: [],
    want: /no cgroup2 filesystem is mounted/,
  },
];

for (const r of rows) {
  test(r.name, () => {
    const got = planDelegation({
      cgroup: r.cgroup,
      mountinfo: r.mountinfo,
      writable: (p) => r.writable.includes(p),
      read: (p) => (p.endsWith('/cgroup.controllers') ? r.controllers : undefined),
    });
    if (r.want instanceof RegExp) {
      assert.is(got.delegated, false);
      assert.match((got as { reason: string }).reason, r.want);
    } else assert.equal(got, r.want);
  });
}

test('cgroup2Mount: a subtree mount (a cgroup namespace view) is not the hierarchy root', () => {
  assert.is(cgroup2Mount('50 1 0:26 /sub /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n'), undefined);
  assert.is(cgroup2Mount('50 1 0:26 / /mnt/c\\040g rw - cgroup2 cgroup2 rw\n'), '/mnt/c g');
});

// enable() on a tree of plain files standing for the delegated cgroup: what it writes, in which order.
function fakeCgroup(subtree: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-fake-cgroup-'));
  writeFileSync(join(dir, 'cgroup.controllers'), 'memory pids\n');
  writeFileSync(join(dir, 'cgroup.subtree_control'), subtree);
  writeFileSync(join(dir, 'cgroup.procs'), '123\n456\n');
  return dir;
}

test('enable(): the processes move to the leaf before the controllers are enabled; nothing when enabled', () => {
  const dir = fakeCgroup('');
  try {
    const d = v2Driver(dir, 'tsbuild', { delegated: true }).delegation!;
    assert.equal(d.controllers, ['memory', 'pids']);
    assert.is(d.enable(['memory']), undefined);
    // A plain file keeps the last pid written; the kernel's cgroup.procs would take each in turn.
    assert.is(readFileSync(join(dir, INIT_LEAF, 'cgroup.procs'), 'utf8'), '456');
    assert.is(readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8'), '+memory');
    assert.ok(existsSync(join(dir, 'tsbuild')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const on = fakeCgroup('memory\n');
  try {
    assert.is(v2Driver(on, 'tsbuild', { delegated: true }).delegation!.enable(['memory']), undefined);
    assert.not.ok(existsSync(join(on, INIT_LEAF)), 'no process moved when the controller is enabled already');
  } finally {
    rmSync(on, { recursive: true, force: true });
  }
});

test('enable(): a controller that cannot be enabled is reported, not thrown', () => {
  const dir = fakeCgroup('');
  try {
    rmSync(join(dir, 'cgroup.subtree_control'));
    mkdirSync(join(dir, 'cgroup.subtree_control')); // writing it fails, as EBUSY would
    const why = v2Driver(dir, 'tsbuild', { delegated: true }).delegation!.enable(['pids']);
    assert.match(why ?? '', /cannot write \+pids to .*cgroup\.subtree_control/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
