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
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
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

/** What a layer could change about the host dir: modes, owners, mtimes of it and its entries. */
function fingerprint(dir: string): string[] {
  const one = (p: string) => {
    const s = lstatSync(p);
    return `${p} ${s.mode.toString(8)} ${s.uid}:${s.gid} ${s.mtimeMs}`;
  };
  return [
    one(dir),
    ...readdirSync(dir)
      .sort()
      .map((n) => one(join(dir, n))),
  ];
}

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
    const before = fingerprint(host);
    const tag = `hostile-${i}:1`;
    const image = hostileImage(tag, c.parts, host);
    ok(tsbuild(['load', '-i', image.file], { root }));
    cleanup(image.work);
    const r = ok(tsbuild(['run', '--rm', tag, 'sh', '-c', 'ls -ld /d'], { root }));
    assert.match(r.stdout, /\/d -> \//, 'the last entry wins: d is the symlink');
    assert.equal(fingerprint(host), before, 'the host dir changed');
    cleanup(host);
  });
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
