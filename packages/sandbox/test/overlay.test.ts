// The root: what lands in the upperdir, the init layer, extra mounts, deep layer stacks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { sh, freshRoot, busyboxLower, listTree, tmp } from './helpers.js';

test('RUN true leaves an empty upperdir', async () => {
  const r = await sh(['true']);
  assert.is(r.code, 0);
  assert.equal(listTree(r.root.upperdir), []);
});

test('reading everything and using the hosts files leaves an empty upperdir', async () => {
  const r = await sh(
    'cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null; ls -R / >/dev/null 2>&1; echo x >> /etc/hosts',
    {
      mounts: [{ type: 'tmpfs', target: '/cache/deep/dir' }],
    },
  );
  assert.is(r.code, 0, r.err);
  assert.equal(listTree(r.root.upperdir), []);
});

test('a write lands in the upperdir and not in the lowerdir', async () => {
  const r = await sh('echo hello > /bin/new && echo more >> /etc/passwd');
  assert.is(r.code, 0, r.err);
  assert.equal(listTree(r.root.upperdir), ['bin', 'bin/new', 'etc', 'etc/passwd']);
  assert.is(readFileSync(join(r.root.upperdir, 'bin/new'), 'utf8'), 'hello\n');
  assert.not.ok(existsSync(join(busyboxLower(), 'bin/new')));
  assert.not.match(readFileSync(join(busyboxLower(), 'etc/passwd'), 'utf8'), /more/);
});

test('copied-up directories keep the image attributes, not the init layer ones', async () => {
  const r = await sh('touch /etc/newfile');
  const lower = lstatSync(join(busyboxLower(), 'etc'));
  const upper = lstatSync(join(r.root.upperdir, 'etc'));
  assert.is(upper.mode, lower.mode);
  assert.is(upper.uid, lower.uid);
});

test('deleting a lower file leaves a 0/0 character device whiteout', async () => {
  const r = await sh('rm /etc/group');
  assert.is(r.code, 0, r.err);
  const st = lstatSync(join(r.root.upperdir, 'etc/group'));
  assert.ok(st.isCharacterDevice());
  assert.is(st.rdev, 0);
});

// A build step's root is mounted volatile (no sync of the whole upper filesystem at unmount);
// a container's is not, because the kernel's marker would make its restart fail.
const volatileCases: { name: string; volatile?: boolean; marker: boolean }[] = [
  { name: 'volatile: the same diff, and the kernel marks the work dir', volatile: true, marker: true },
  { name: 'not volatile (the default): no marker, the pair mounts again', marker: false },
];
for (const c of volatileCases) {
  test(c.name, async () => {
    const root = { ...freshRoot(), volatile: c.volatile };
    const r = await sh('echo hi > /etc/motd && rm /etc/group', { root });
    assert.is(r.code, 0, r.err);
    assert.equal(listTree(root.upperdir), ['etc', 'etc/group', 'etc/motd']);
    assert.is(readFileSync(join(root.upperdir, 'etc/motd'), 'utf8'), 'hi\n');
    assert.is(existsSync(join(root.workdir, 'work/incompat/volatile')), c.marker);
    if (!c.marker) {
      const again = await sh('cat /etc/motd', { root });
      assert.is(again.code, 0, again.err);
      assert.is(again.out, 'hi\n');
    }
  });
}

test('120 lowerdirs with long paths (past the 4095-byte option limit)', async () => {
  const layers: string[] = [];
  for (let i = 0; i < 120; i++) {
    const d = join(tmp, 'deep', `layer-${String(i).padStart(3, '0')}-with-a-rather-long-directory-name`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), `${i}\n`);
    layers.push(d);
  }
  // The same file in every layer: the top one must win.
  for (let i = 0; i < 120; i++) writeFileSync(join(layers[i], 'which'), `${i}\n`);
  const lowerdirs = [...layers, busyboxLower()];
  assert.ok(lowerdirs.join(':').length > 4095);
  const r = await sh('cat /which; ls / | grep -c "^f"; cat /f0 /f119', { root: freshRoot(lowerdirs) });
  assert.is(r.code, 0, r.err);
  assert.is(r.out, '0\n120\n0\n119\n');
});

test('an empty stack (FROM scratch) with a bind-mounted busybox', async () => {
  const r = await sh(['/bb/busybox', 'sh', '-c', '/bb/busybox ls /'], {
    root: freshRoot([]),
    mounts: [{ type: 'bind', source: join(busyboxLower(), 'bin'), target: '/bb' }],
  });
  assert.is(r.code, 0, r.err);
  assert.equal(r.out.split('\n').filter(Boolean).sort(), ['bb', 'dev', 'etc', 'proc', 'sys']);
  assert.equal(listTree(r.root.upperdir), []);
});

const mountCases = [
  { name: 'read-only bind cannot be written', cmd: 'echo x > /data/f', ro: true, code: 1, hostFile: undefined },
  { name: 'writable bind writes through to the host', cmd: 'echo x > /data/f', ro: false, code: 0, hostFile: 'x\n' },
];
for (const c of mountCases) {
  test(`mounts: ${c.name}`, async () => {
    const src = join(tmp, `bind-${c.ro}`);
    mkdirSync(src, { recursive: true });
    const r = await sh(c.cmd, { mounts: [{ type: 'bind', source: src, target: '/data', readonly: c.ro }] });
    assert.is(r.code, c.code, r.err);
    assert.is(existsSync(join(src, 'f')) ? readFileSync(join(src, 'f'), 'utf8') : undefined, c.hostFile);
    assert.equal(listTree(r.root.upperdir), []);
  });
}

test('mounts: tmpfs with a size limit', async () => {
  const r = await sh(
    'dd if=/dev/zero of=/scratch/big bs=1048576 count=4 2>/dev/null; echo $?; df -k /scratch | tail -1',
    {
      mounts: [{ type: 'tmpfs', target: '/scratch', size: 1024 * 1024 }],
    },
  );
  assert.match(r.out, /^1\n/);
});

test('mounts: a target under a symlinked parent resolves inside the root, never on the host', async () => {
  // A hostile layer: /var/run -> ../run, and /escape -> an absolute host path that also exists on the host.
  const hostDir = join(tmp, 'host-side');
  mkdirSync(hostDir, { recursive: true });
  const layer = join(tmp, 'symlink-layer');
  mkdirSync(join(layer, 'var'), { recursive: true });
  mkdirSync(join(layer, 'run'));
  symlinkSync('../run', join(layer, 'var/run'));
  symlinkSync(hostDir, join(layer, 'escape'));
  const r = await sh('ls -ld /var/run; ls -d /run/m1; ls -d ' + hostDir + '/m2; echo ok', {
    root: freshRoot([layer, busyboxLower()]),
    mounts: [
      { type: 'tmpfs', target: '/var/run/m1' },
      { type: 'tmpfs', target: '/escape/m2' },
    ],
  });
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /\/var\/run -> \.\.\/run/);
  assert.not.ok(existsSync(join(hostDir, 'm2')), 'a directory was created on the host');
  assert.not.ok(existsSync(join(layer, 'run/m1')), 'a lowerdir was modified');
  assert.equal(listTree(r.root.upperdir), []);
});

test.run();
