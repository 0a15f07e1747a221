// Base images are untrusted: an image brought with `tsbuild load` (or pulled) and started with
// `tsbuild run` must not change anything on the host, and what its layers hold must not be
// readable by other host users through the store.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { have, skip, treeFingerprint } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
import { sh } from './helpers/image.js';

const root = storeWithBase();

/** One staged tar member list: a dir to stage it in, and what `tar -r` appends from there. */
type Part = (stage: string, host: string) => { args: string[]; names: string[] };

/** Directories d/<host>/v with metadata that would show on the host: setuid 0777, uid 1234, mtime 1000. */
const queued =
  (withParent: boolean): Part =>
  (stage, host) => {
    mkdirSync(join(stage, 'd', host, 'v'), { recursive: true });
    const names = [...(withParent ? ['d'] : []), join('d', host, 'v')];
    return { args: ['--owner=1234', '--group=1234', '--mode=4777', '--mtime=@1000'], names };
  };
const linkToRoot: Part = (stage) => {
  symlinkSync('/', join(stage, 'd'));
  return { args: [], names: ['d'] };
};
const fileD: Part = (stage) => {
  writeFileSync(join(stage, 'd'), 'f');
  return { args: [], names: ['d'] };
};
const whiteoutD: Part = (stage) => {
  writeFileSync(join(stage, '.wh.d'), '');
  return { args: [], names: ['.wh.d'] };
};

const cases: { name: string; parts: Part[] }[] = [
  {
    name: 'a directory replaced by a symlink to / after metadata was queued below it',
    parts: [queued(true), linkToRoot],
  },
  { name: 'the same, the directory first replaced by a file', parts: [queued(false), fileD, linkToRoot] },
  { name: 'the same, the directory first whited out', parts: [queued(false), whiteoutD, linkToRoot] },
];

/** A docker-save archive of the busybox base plus one layer made of parts, tagged tag. */
function hostileImage(tag: string, parts: Part[], host: string): { file: string; work: string } {
  const work = tempDir('hostile-img');
  const x = join(work, 'x');
  mkdirSync(x);
  ok(tsbuild(['save', '--format', 'docker', '-o', join(work, 'base.tar'), Base], { root }));
  sh('tar', ['-xf', join(work, 'base.tar'), '-C', x]);
  mkdirSync(join(x, 'evil'));
  const layer = join(x, 'evil', 'layer.tar');
  parts.forEach((part, i) => {
    const stage = join(work, `stage${i}`);
    mkdirSync(stage);
    const { args, names } = part(stage, host.slice(1));
    sh('tar', [i === 0 ? '-cf' : '-rf', layer, '--no-recursion', '--numeric-owner', ...args, '-C', stage, ...names]);
  });
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  const [m] = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(x, m.Config), 'utf8'));
  config.rootfs.diff_ids.push(`sha256:${sha(readFileSync(layer))}`);
  config.history.push({ created_by: 'a hostile layer' });
  const configJSON = JSON.stringify(config);
  rmSync(join(x, m.Config));
  writeFileSync(join(x, `${sha(configJSON)}.json`), configJSON);
  const manifest = [{ Config: `${sha(configJSON)}.json`, RepoTags: [tag], Layers: [...m.Layers, 'evil/layer.tar'] }];
  writeFileSync(join(x, 'manifest.json'), JSON.stringify(manifest));
  // Without the OCI index `save` also writes, load reads manifest.json (the docker form).
  rmSync(join(x, 'index.json'), { force: true });
  rmSync(join(x, 'oci-layout'), { force: true });
  const out = join(work, 'hostile.tar');
  sh('tar', ['-cf', out, '-C', x, ...readdirSync(x)]);
  return { file: out, work };
}

cases.forEach((c, i) => {
  test(`load + run: ${c.name} leaves the host alone`, () => {
    const host = tempDir('host');
    mkdirSync(join(host, 'v'), { mode: 0o755 });
    const before = treeFingerprint(host);
    const tag = `hostile-${i}:1`;
    const image = hostileImage(tag, c.parts, host);
    ok(tsbuild(['load', '-i', image.file], { root }));
    cleanup(image.work);
    const r = ok(tsbuild(['run', '--rm', tag, 'sh', '-c', 'ls -ld /d'], { root }));
    assert.match(r.stdout, /\/d -> \//, 'the last entry wins: d is the symlink');
    assert.equal(treeFingerprint(host), before, 'the host dir changed');
    cleanup(host);
  });
});

// Base images that ship device nodes (some carry /dev entries) load as with Docker, and the nodes
// are inert: the root is mounted nodev, so none opens, whatever its mode and whatever the devices
// cgroup allows (c 1:3 is /dev/null, which it allows). mem is /dev/mem; disk is the block device the
// store lives on (or loop0 where that is not a real disk).
const deviceNodes: Part = (stage) => {
  const st = statSync(root);
  const [maj, min] = major(st.dev) > 0 ? [major(st.dev), minor(st.dev)] : [7, 0];
  mkdirSync(join(stage, 'dev'));
  sh('mknod', ['-m', '666', join(stage, 'mem'), 'c', '1', '1']);
  sh('mknod', ['-m', '666', join(stage, 'null'), 'c', '1', '3']);
  sh('mknod', ['-m', '666', join(stage, 'disk'), 'b', String(maj), String(min)]);
  sh('mknod', ['-m', '620', join(stage, 'dev', 'console'), 'c', '5', '1']);
  return { args: [], names: ['mem', 'null', 'disk', 'dev', 'dev/console'] };
};
const major = (dev: number) => Number((BigInt(dev) >> 8n) & 0xfffn);
const minor = (dev: number) => Number((BigInt(dev) & 0xffn) | ((BigInt(dev) >> 12n) & 0xfff00n));

test('load + run + RUN: device nodes in a layer are accepted, and none can be opened', () => {
  const host = tempDir('host');
  const image = hostileImage('hostile-devices:1', [deviceNodes], host);
  ok(tsbuild(['load', '-i', image.file], { root }));
  cleanup(image.work, host);
  const probe = [
    'ls -l /disk /mem /null | cut -c1',
    'head -c1 /mem && echo READ-MEM',
    'head -c1 /disk && echo READ-DISK',
    'echo x > /null && echo WROTE-NULL',
    'echo end',
  ].join('; ');
  const r = tsbuild(['run', '--rm', 'hostile-devices:1', 'sh', '-c', probe], { root });
  assert.is(r.stdout, 'b\nc\nc\nend\n', r.stderr);
  assert.is(r.stderr.match(/Permission denied/g)?.length, 3, r.stderr);
  const ctx = context({
    Dockerfile: [
      'FROM hostile-devices:1',
      'RUN test -c /mem && test -b /disk && ! head -c1 /mem && ! head -c1 /disk && ! (echo x > /null)',
      // A node the step makes itself is as inert (the step keeps CAP_MKNOD, as in Docker).
      'RUN mknod /mem2 c 1 1 && ! head -c1 /mem2',
      '',
    ].join('\n'),
  });
  ok(tsbuild(['build', '-q', '-t', 'hostile-devices:2', ctx], { root }));
  cleanup(ctx);
  // The nodes are in the image's layers as they came, and still inert in a container of the result.
  const again = tsbuild(['run', '--rm', 'hostile-devices:2', 'sh', '-c', probe], { root });
  assert.is(again.stdout, 'b\nc\nc\nend\n', again.stderr);
});

test('a 0644 file a RUN step wrote is unreadable to other host users in the store', () => {
  if (process.getuid?.() !== 0) return skip('needs root to read as another user', { required: false });
  if (!have('setpriv')) return skip('setpriv (util-linux) not installed');
  // A store made before stores were private: open to everyone, as umask 022 left it (its
  // parent, the test's temp dir, is 0755 too).
  chmodSync(root, 0o755);
  const probe = join(root, 'probe');
  writeFileSync(probe, 'probe\n', { mode: 0o644 });
  const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  const asNobody = (f: string) => spawnSync('setpriv', [...nobody, 'cat', f], { encoding: 'utf8' });
  assert.is(asNobody(probe).stdout, 'probe\n', 'the check can see into an open store');
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo secret > /s && chmod 644 /s\n` });
  ok(tsbuild(['build', '--no-cache', ctx], { root }));
  const found = sh('find', [join(root, 'snapshots'), '-name', 's', '-type', 'f'])
    .split('\n')
    .filter(Boolean);
  assert.ok(found.length > 0, 'the file is in a snapshot');
  for (const f of found) {
    assert.is(readFileSync(f, 'utf8'), 'secret\n');
    const r = asNobody(f);
    assert.is(r.stdout, '', `${f} is readable by nobody`);
    assert.match(r.stderr, /Permission denied/);
  }
  assert.is((lstatSync(root).mode & 0o777).toString(8), '700');
  assert.is(asNobody(probe).stdout, '');
  rmSync(probe);
  cleanup(ctx);
});

test.after(() => cleanup(root));
test.run();
