// SandboxSpec.extraHosts, shmSize and rlimits (docker's --add-host, --shm-size, --ulimit) as the
// command sees them, and the launcher's refusal of a limit it cannot set.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sh } from './helpers.js';
import { rlimitNumbers } from '../src/index.js';

test('extraHosts: appended to /etc/hosts after the defaults, in order', async () => {
  const r = await sh('cat /etc/hosts', {
    extraHosts: [
      { host: 'db', ip: '10.0.0.5' },
      { host: 'v6', ip: 'fd00::1' },
    ],
  });
  assert.is(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  assert.ok(lines[0].startsWith('127.0.0.1\tlocalhost'), r.out);
  assert.equal(lines.slice(-2), ['10.0.0.5\tdb', 'fd00::1\tv6']);
});

test('shmSize: the size of /dev/shm (64 MiB without it)', async () => {
  const size = "df -k /dev/shm | awk 'NR==2 {print $2}'";
  assert.is((await sh(size)).out, `${64 * 1024}\n`);
  assert.is((await sh(size, { shmSize: 200 << 20 })).out, `${200 * 1024}\n`);
});

test('rlimits: soft and hard as given, -1 unlimited', async () => {
  const r = await sh('ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc', {
    rlimits: [
      { resource: rlimitNumbers.nofile, soft: 100, hard: 200 },
      { resource: rlimitNumbers.core, soft: -1, hard: -1 },
    ],
  });
  assert.is(r.code, 0, r.err);
  assert.is(r.out, '100\n200\nunlimited\nunlimited\n');
});

test('a limit the kernel refuses is a start error naming --ulimit', async () => {
  // nofile above fs.nr_open (1048576 by default, at most 2^30) cannot be set, even with CAP_SYS_RESOURCE.
  const r = await sh('true', { rlimits: [{ resource: rlimitNumbers.nofile, soft: 1 << 31, hard: 1 << 31 }] });
  assert.is(r.code, 126, r.err);
  assert.match(r.startError ?? '', /cannot set a resource limit \(--ulimit\)/);
});

test.run();
