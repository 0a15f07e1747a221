// COPY keeps hard links as BuildKit does: within one source (a directory of the context or of
// another stage, or one match of a wildcard), files that are one inode there are one inode in the
// new layer, whether or not every link of that inode is copied; files of different sources never
// are. The layer carries tar hardlink entries (the content once), the snapshot later steps see
// has the links, and so does the image another tool (umoci) unpacks. The groups expected below
// are what BuildKit (dockerd 20.10) made of the same Dockerfile and context.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linkSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
import { layoutManifest, sh, umociRootfs } from './helpers/image.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const MiB = 1 << 20;

const dockerfile = `FROM ${Base} AS builder
RUN mkdir -p /out/bin /other && echo x > /out/bin/x && ln /out/bin/x /out/bin/x2 && ln /out/bin/x /out/x3 \\
 && echo y > /out/y && ln /out/y /other/y && ln /out/y /out/y2 \\
 && echo z > /other/z && ln /other/z /out/z && echo w > /out/w && chmod 755 /out/w && ln /out/w /out/w2
FROM ${Base}
COPY ctx/ /ctx/
COPY ctx/a ctx/b /two/
COPY ctx/sub /sub/
COPY l* /w/
COPY --from=builder /out/ /usr/local/
COPY --from=builder --chown=1000:1000 /out/ /own/
COPY --from=builder --chmod=700 /out/ /mod/
COPY big/ /big/
`;

// path → the group it is in ('' for a file of its own), as BuildKit made them.
const groups: Record<string, string> = {
  'ctx/a': 'ctx-a',
  'ctx/b': 'ctx-a',
  'ctx/sub/c': 'ctx-a',
  'ctx/p': 'ctx-p',
  'ctx/sub/q': 'ctx-p',
  'ctx/solo': '',
  'two/a': '',
  'two/b': '', // two sources
  'sub/c': '',
  'sub/q': '', // the other links are outside the copied directory
  'w/l1': '',
  'w/l2': '', // one wildcard, two matches: two sources
  'big/1': 'big',
  'big/2': 'big',
  'big/3': 'big',
};
for (const d of ['usr/local', 'own', 'mod']) {
  Object.assign(groups, {
    [`${d}/bin/x`]: `${d}-x`,
    [`${d}/bin/x2`]: `${d}-x`,
    [`${d}/x3`]: `${d}-x`,
    [`${d}/y`]: `${d}-y`,
    [`${d}/y2`]: `${d}-y`, // /other/y is not copied: the two copied links stay one
    [`${d}/z`]: '', // its only other link is not copied
    [`${d}/w`]: `${d}-w`,
    [`${d}/w2`]: `${d}-w`,
  });
}
const dirsChecked = ['ctx', 'two', 'sub', 'w', 'usr/local', 'own', 'mod', 'big'];

interface Seen {
  nlink: number;
  ino: string;
  mode: string;
  uid: number;
}

/** Checks a path → (link count, inode) listing against the expected groups. */
function checkGroups(seen: Record<string, Seen>, where: string): void {
  assert.equal(Object.keys(seen).sort(), Object.keys(groups).sort(), `${where}: the files`);
  const inodeOf = new Map<string, string>();
  for (const [path, group] of Object.entries(groups)) {
    const s = seen[path];
    const size = group ? Object.values(groups).filter((g) => g === group).length : 1;
    assert.is(s.nlink, size, `${where}: ${path} has ${size} link(s)`);
    if (!group) continue;
    const first = inodeOf.get(group);
    if (first === undefined) inodeOf.set(group, s.ino);
    else assert.is(s.ino, first, `${where}: ${path} is the same inode as the rest of group ${group}`);
  }
  assert.is(new Set(inodeOf.values()).size, inodeOf.size, `${where}: groups are distinct inodes`);
}

const ctx = context({ Dockerfile: dockerfile, 'ctx/a': 'A\n', 'ctx/p': 'P\n', 'ctx/solo': 'S\n', l1: 'L\n' });
mkdirSync(join(ctx, 'ctx', 'sub'));
linkSync(join(ctx, 'ctx/a'), join(ctx, 'ctx/b'));
linkSync(join(ctx, 'ctx/a'), join(ctx, 'ctx/sub/c'));
linkSync(join(ctx, 'ctx/p'), join(ctx, 'ctx/sub/q'));
linkSync(join(ctx, 'l1'), join(ctx, 'l2'));
mkdirSync(join(ctx, 'big'));
writeFileSync(join(ctx, 'big/1'), randomBytes(MiB));
linkSync(join(ctx, 'big/1'), join(ctx, 'big/2'));
linkSync(join(ctx, 'big/1'), join(ctx, 'big/3'));
const layout = tempDir('layout');
ok(t(['build', '-t', 'hl:1', '-o', `type=oci,dest=${layout},tar=false`, ctx]));

test('what a container sees: link counts and inodes per group, --chown and --chmod on the whole group', () => {
  const find = `cd / && find ${dirsChecked.join(' ')} -type f | xargs stat -c '%n %h %i %a %u'`;
  const list = ok(t(['run', '--rm', 'hl:1', 'sh', '-c', find])).stdout;
  const seen: Record<string, Seen> = {};
  for (const line of list.trim().split('\n')) {
    const [path, nlink, ino, mode, uid] = line.split(' ');
    seen[path] = { nlink: Number(nlink), ino: ino, mode: mode, uid: Number(uid) };
  }
  checkGroups(seen, 'tsbuild run');
  for (const p of ['own/bin/x2', 'own/y2', 'own/w2']) assert.is(seen[p].uid, 1000, p);
  for (const p of ['mod/bin/x2', 'mod/y2', 'mod/w2', 'mod/z']) assert.is(seen[p].mode, '700', p);
  assert.is(seen['usr/local/w2'].mode, '755');
});

test('the layers carry hardlink entries, each after the file it names; the content is stored once', () => {
  const blobs = layoutManifest(layout).layers.map((l: { digest: string; size: number }) => ({
    file: join(layout, 'blobs', 'sha256', l.digest.slice(7)),
    size: l.size,
  }));
  const all = blobs.map((b: { file: string }) => sh('tar', ['-tvzf', b.file])).join('');
  const links = [
    ['ctx/b', 'ctx/a'],
    ['ctx/sub/c', 'ctx/a'],
    ['ctx/sub/q', 'ctx/p'],
    ['usr/local/bin/x2', 'usr/local/bin/x'],
    ['usr/local/x3', 'usr/local/bin/x'],
    ['usr/local/y2', 'usr/local/y'],
    ['own/w2', 'own/w'],
    ['mod/y2', 'mod/y'],
    ['big/2', 'big/1'],
  ];
  for (const [link, target] of links) {
    assert.match(all, ` ${link} link to ${target}\n`, `${link} is a hardlink entry`);
  }
  for (const single of ['two/b', 'sub/c', 'w/l2', 'usr/local/z']) assert.not.match(all, ` ${single} link to`);
  // Three links to 1 MiB of random bytes: one copy of the content in the (gzip) layer.
  const big = blobs[blobs.length - 1]!;
  assert.ok(big.size > MiB && big.size < 1.5 * MiB, `the big layer is ${big.size} bytes`);
});

test('umoci unpacks the image with the same links', () => {
  const rootfs = umociRootfs(layout, '1');
  const seen: Record<string, Seen> = {};
  for (const path of Object.keys(groups)) {
    const st = lstatSync(join(rootfs, path), { bigint: true });
    const mode = (Number(st.mode) & 0o7777).toString(8);
    seen[path] = { nlink: Number(st.nlink), ino: String(st.ino), mode, uid: Number(st.uid) };
  }
  checkGroups({ ...seen }, 'umoci unpack');
  cleanup(rootfs.replace(/\/bundle\/rootfs$/, ''));
});

test('another store that loads the image unpacks the same links', () => {
  const file = join(tempDir('save'), 'hl.tar');
  ok(t(['save', '-o', file, 'hl:1']));
  const other = storeWithBase(tempDir('store'));
  ok(tsbuild(['load', '-i', file], { root: other }));
  const find = `cd / && find ${dirsChecked.join(' ')} -type f | xargs stat -c '%n %h %i'`;
  const list = ok(tsbuild(['run', '--rm', 'hl:1', 'sh', '-c', find], { root: other })).stdout;
  const seen: Record<string, Seen> = {};
  for (const line of list.trim().split('\n')) {
    const [path, nlink, ino] = line.split(' ');
    seen[path] = { nlink: Number(nlink), ino: ino, mode: '', uid: 0 };
  }
  checkGroups(seen, 'loaded elsewhere');
  cleanup(other, file);
});

test('a later source replaces a linked file: the other link keeps the old content (snapshot and layer)', () => {
  // grp/a and grp/b are one inode; over/a replaces a (BuildKit: the new a is a file of its own, b keeps "G").
  const dockerfile = `FROM ${Base}\nCOPY grp/ over/ /mix/\nCOPY grp/ /kept/\nCOPY over/ /kept/\n`;
  const c = context({ Dockerfile: dockerfile, 'grp/a': 'G\n', 'over/a': 'O\n' });
  linkSync(join(c, 'grp/a'), join(c, 'grp/b'));
  const out = tempDir('layout');
  ok(t(['build', '-t', 'hl-mix:1', '-o', `type=oci,dest=${out},tar=false`, c]));
  const want = 'a 1 O\nb 1 G\n';
  const show = (dir: string) => `cd ${dir} && for f in a b; do echo "$f $(stat -c %h $f) $(cat $f)"; done`;
  assert.is(ok(t(['run', '--rm', 'hl-mix:1', 'sh', '-c', show('/mix')])).stdout, want, '/mix in a container');
  // Across layers overlayfs shows the count of the lower layer's inode, whose other link is hidden (as under Docker).
  const kept = ok(t(['run', '--rm', 'hl-mix:1', 'sh', '-c', show('/kept')])).stdout;
  assert.is(kept, 'a 1 O\nb 2 G\n', '/kept in a container');
  const rootfs = umociRootfs(out, '1');
  for (const dir of ['mix', 'kept']) {
    assert.is(sh('sh', ['-c', show(join(rootfs, dir))]), want, `${dir} unpacked by umoci`);
  }
  cleanup(c, out, rootfs.replace(/\/bundle\/rootfs$/, ''));
});

test.after(() => cleanup(root, ctx, layout));
test.run();
