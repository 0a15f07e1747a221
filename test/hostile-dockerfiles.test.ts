// Hostile Dockerfiles and build contexts (issue: the host must stay untouched). Every row builds
// something that tries to reach a scratch "host" tree this test makes under the temp dir: a
// symlink staged by one source of a COPY/ADD that a later source (a heredoc, another directory,
// an archive) would write through, or a RUN bind mount that would show files the build must not
// see. The host tree is fingerprinted before and after each row (paths, types, contents, link
// targets, modes, owners, mtimes): nothing outside the store and the requested outputs may change. A
// build may fail on such input, but with a clear error and never a stack trace.
// The other Dockerfile-borne items have their tests beside the machinery they need:
// ADD <url> limits in add-url/tls.test.ts (a server), cache sharing=private in cache.test.ts, and
// --cache-from scoping in registry.test.ts (a registry).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootless } from '@tsbuild/sandbox';
import { treeFingerprint } from '@tsbuild/testkit';
import {
  Base,
  cleanup,
  context,
  ok,
  storeWithBase,
  tempDir,
  tsbuild,
  type FileSpec,
  type Result,
} from './helpers/cli.js';

const root = storeWithBase();
let n = 0;

/** A fresh scratch "host" tree: a file, a directory with a file, and a name that must stay absent. */
function hostTree(): string {
  const host = tempDir('host');
  writeFileSync(join(host, 'host-file'), 'original\n', { mode: 0o644 });
  mkdirSync(join(host, 'hostdir'), { mode: 0o755 });
  writeFileSync(join(host, 'hostdir', 'secret'), 'HOST-SECRET-4711\n', { mode: 0o600 });
  // A directory whose owner and mode no image has: seeing them in a build means the host was read.
  mkdirSync(join(host, 'hostdir', 'sub'), { mode: 0o711 });
  chownSync(join(host, 'hostdir', 'sub'), 4321, 4321);
  return host;
}

/**
 * A tar archive made with GNU tar, one table of files after another (appended with -r, so that a
 * later table may hold x/file below an x that an earlier one made a symlink).
 */
function tarOf(...parts: Record<string, FileSpec>[]): Buffer {
  const dir = tempDir('tar');
  const out = join(dir, 'a.tar');
  for (const [i, files] of parts.entries()) {
    const src = context(files);
    const args = [i === 0 ? '-cf' : '-rf', out, '-C', src, '--sort=name', ...Object.keys(files)];
    const r = spawnSync('tar', args, { encoding: 'utf8' });
    cleanup(src);
    if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  }
  const b = readFileSync(out);
  cleanup(dir);
  return b;
}

/** A tar (made by GNU tar) of d/n, a character device 1:3, and d/f, a file. */
function deviceTar(): Buffer {
  if (rootless())
    return ustar([
      { name: 'd/', type: '5' },
      { name: 'd/n', type: '3', dev: [1, 3] },
      { name: 'd/f', data: 'f\n' },
    ]);
  const dir = tempDir('tar');
  const r = spawnSync('sh', ['-c', 'mkdir d && mknod d/n c 1 3 && echo f > d/f && tar -cf a.tar d'], { cwd: dir });
  if (r.status !== 0) throw new Error(`making the device tar: ${r.stderr}`);
  const b = readFileSync(join(dir, 'a.tar'));
  cleanup(dir);
  return b;
}

/**
 * A tar written here, for rootless runs: a user namespace cannot mknod, so GNU tar cannot put a
 * device node of the disk into one. Members: type '0' file, '5' dir, '3' char device.
 */
function ustar(members: { name: string; type?: string; data?: string; dev?: [number, number] }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    const h = Buffer.alloc(512);
    const put = (off: number, len: number, v: string) => h.write(v, off, len, 'ascii');
    const oct = (off: number, len: number, n: number) => put(off, len, n.toString(8).padStart(len - 1, '0') + '\0');
    put(0, 100, m.name);
    oct(100, 8, m.type === '5' ? 0o755 : 0o644);
    oct(108, 8, 0);
    oct(116, 8, 0);
    oct(124, 12, data.length);
    oct(136, 12, 1700000000);
    put(148, 8, '        ');
    put(156, 1, m.type ?? '0');
    put(257, 8, 'ustar\x0000');
    oct(329, 8, m.dev?.[0] ?? 0);
    oct(337, 8, m.dev?.[1] ?? 0);
    oct(
      148,
      7,
      h.reduce((a, b) => a + b, 0),
    );
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

/**
 * Rootless (a user namespace), no device node can be made at all: the stage's `mknod` fails, so
 * the special file these rows guard against never exists, and the build stops there.
 */
function noDeviceNodes(r: Result): void {
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /Dockerfile:2:\d+: /);
  assert.match(r.stderr, /mknod: .*Operation not permitted/);
}

type Files = Record<string, FileSpec | Buffer>;

/** A build context from a table; Buffers are written as they are (archives). */
function contextOf(files: Files): string {
  const specs = Object.entries(files).filter(([, s]) => !Buffer.isBuffer(s));
  const dir = context(Object.fromEntries(specs) as Record<string, FileSpec>);
  for (const [path, spec] of Object.entries(files)) if (Buffer.isBuffer(spec)) writeFileSync(join(dir, path), spec);
  return dir;
}

/** The build failed cleanly (a message, no stack trace) or succeeded. */
function clean(r: Result): void {
  assert.not.match(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `a stack trace:\n${r.stderr}`);
  if (r.code !== 0) assert.ok(r.stderr.trim().length > 0, 'a failed build says why');
}

interface Row {
  name: string;
  /** The Dockerfile; H is replaced by the scratch host tree's path. */
  dockerfile: string;
  /** Context files besides the Dockerfile (H replaced in symlink targets). */
  files?: (host: string) => Files;
  /** Extra checks of the result and the image (tag `img`), if any. */
  check?: (r: Result, img: string, host: string) => void;
}

const stageLink = (to: string, at = '/d/x') =>
  `FROM ${Base} AS s\nRUN mkdir -p $(dirname ${at}) && ln -s H/${to} ${at}\n`;

/** Reads a file of the built image (empty when absent). */
function cat(img: string, path: string): string {
  return tsbuild(['run', '--rm', img, 'sh', '-c', `cat ${path} 2>/dev/null; true`], { root }).stdout;
}

/** An archive's files below x (where a link to a host dir waits). */
const xFiles = { 'x/file': 'owned\n', 'x/secret': 'owned\n' };

const rows: Row[] = [
  // Item 2: a heredoc written through a symlink that another source of the same COPY staged.
  {
    name: 'COPY --from a stage whose symlink names a host file, then a heredoc of the same name',
    dockerfile: `${stageLink('host-file')}FROM ${Base}\nCOPY --from=s /d/ <<x /dst/\nowned\nx\n`,
    check: (r, img) => {
      if (r.code === 0) assert.is(cat(img, '/dst/x'), 'owned\n', 'the heredoc replaced the link');
    },
  },
  {
    name: 'the same with --chown and --chmod (owner and mode must not land on the host file)',
    dockerfile:
      `${stageLink('host-file')}FROM ${Base}\n` +
      `COPY --chown=1234:1234 --chmod=4777 --from=s /d/ <<x /dst/\nowned\nx\n`,
  },
  {
    name: 'the same with --link',
    dockerfile: `${stageLink('host-file')}FROM ${Base}\nCOPY --link --from=s /d/ <<x /dst/\nowned\nx\n`,
  },
  {
    name: 'a dangling stage symlink to a new host file, then a heredoc of that name',
    dockerfile: `${stageLink('new-file')}FROM ${Base}\nCOPY --from=s /d/ <<x /dst/\nowned\nx\n`,
  },
  {
    name: 'COPY --from: an earlier source stages a link to a host dir, a later one writes x/file through it',
    dockerfile:
      `${stageLink('hostdir')}RUN mkdir -p /e/x && echo owned > /e/x/file && echo owned > /e/x/secret\n` +
      `FROM ${Base}\nCOPY --from=s /d/ /e/ /dst/\n`,
    check: (r, img) => {
      if (r.code === 0) assert.is(cat(img, '/dst/x/file'), 'owned\n');
    },
  },
  // BuildKit gives /dst/f as a regular file with the later source's content, as tsbuild does.
  {
    name: 'COPY --from: an earlier source stages a link to a host file, a later single file has its name',
    dockerfile: `${stageLink('host-file', '/d/f')}RUN echo owned > /f\nFROM ${Base}\nCOPY --from=s /d/ /f /dst/\n`,
    check: (r, img) => {
      if (r.code === 0) assert.is(cat(img, '/dst/f'), 'owned\n');
    },
  },
  // BuildKit (docker 20.10 here) fails this step ("Error processing tar file: open /x/file"); tsbuild
  // lets the archive's directory replace the link, as a later source replaces an earlier one.
  {
    name: 'ADD links/ evil.tar: a context link to a host dir, then an archive holding x/file',
    dockerfile: `FROM ${Base}\nADD links/ evil.tar /dst/\n`,
    files: (h) => ({ 'links/x': { symlink: `${h}/hostdir` }, 'evil.tar': tarOf(xFiles) }),
    check: (r, img) => {
      ok(r);
      assert.is(cat(img, '/dst/x/file'), 'owned\n');
    },
  },
  {
    name: 'ADD --chown links/ evil.tar: the same, the link staged by the builder itself',
    dockerfile: `FROM ${Base}\nADD --chown=0:0 links/ evil.tar /dst/\n`,
    files: (h) => ({ 'links/x': { symlink: `${h}/hostdir` }, 'evil.tar': tarOf(xFiles) }),
  },
  {
    name: 'ADD --chown lnk evil.tar: a single context symlink, then an archive writing through it',
    dockerfile: `FROM ${Base}\nADD --chown=0:0 x evil.tar /dst/\n`,
    files: (h) => ({ x: { symlink: `${h}/hostdir` }, 'evil.tar': tarOf({ 'x/file': 'owned\n' }) }),
  },
  {
    name: 'ADD of an archive that holds a link to a host file, then a heredoc of that name',
    dockerfile: `FROM ${Base}\nADD evil.tar <<x /dst/\nowned\nx\n`,
    files: (h) => ({ 'evil.tar': tarOf({ x: { symlink: `${h}/host-file` } }) }),
  },
  {
    name: 'ADD of an archive that holds a link to a host dir and then x/file below it',
    dockerfile: `FROM ${Base}\nADD evil.tar /dst/\n`,
    files: (h) => ({ 'evil.tar': tarOf({ x: { symlink: `${h}/hostdir` } }, { 'x/file': 'owned\n' }) }),
  },
  {
    name: 'ADD of an archive holding a link to a host file, then a context dir with a file of that name (cp)',
    dockerfile: `FROM ${Base}\nADD evil.tar dir/ /dst/\n`,
    files: (h) => ({ 'evil.tar': tarOf({ x: { symlink: `${h}/host-file` } }), 'dir/x': 'owned\n' }),
    check: (r, img) => {
      if (r.code === 0) assert.is(cat(img, '/dst/x'), 'owned\n');
    },
  },
  {
    name: 'ADD dir/ evil.tar: cp copies dir/x/file after the archive replaced x by a link to a host dir',
    dockerfile: `FROM ${Base}\nADD dir/ evil.tar /dst/\n`,
    files: (h) => ({
      'dir/x/file': 'owned\n',
      'dir/x/secret': 'owned\n',
      'evil.tar': tarOf({ x: { symlink: `${h}/hostdir` } }),
    }),
  },
  {
    name: 'COPY of two context dirs: the first holds a link to a host dir, the second x/file',
    dockerfile: `FROM ${Base}\nCOPY links/ dir/ /dst/\n`,
    files: (h) => ({ 'links/x': { symlink: `${h}/hostdir` }, 'dir/x/file': 'owned\n', 'dir/x/secret': 'owned\n' }),
  },
  {
    name: 'COPY of two context dirs (both by cp): a link to a host file, then a file of that name',
    dockerfile: `FROM ${Base}\nCOPY links/ dir/ /dst/\n`,
    files: (h) => ({
      'links/x': { symlink: `${h}/host-file` },
      'links/n': { symlink: `${h}/new-file` },
      'dir/x': 'owned\n',
      'dir/n': 'owned\n',
    }),
    check: (r, img) => {
      if (r.code === 0) assert.is(cat(img, '/dst/x'), 'owned\n');
    },
  },
  {
    name: 'COPY --chmod of two context dirs (the builder writes each file itself)',
    dockerfile: `FROM ${Base}\nCOPY --chmod=777 links/ dir/ /dst/\n`,
    files: (h) => ({ 'links/x': { symlink: `${h}/hostdir` }, 'dir/x/file': 'owned\n', 'dir/x/secret': 'owned\n' }),
  },
  {
    name: 'COPY of a context symlink to a host dir, then a directory with x/file',
    dockerfile: `FROM ${Base}\nCOPY --chown=0:0 x dir/ /dst/\n`,
    files: (h) => ({ x: { symlink: `${h}/hostdir` }, 'dir/x/file': 'owned\n' }),
  },
  {
    name: 'a symlinked parent directory in the destination path inside the image',
    dockerfile:
      `FROM ${Base}\nRUN ln -s H/hostdir /lnk && ln -s H/host-file /lf\n` +
      `COPY f /lnk/file\nCOPY f /lnk/sub/\nADD evil.tar /lnk/\nCOPY <<x /lf\nowned\nx\nWORKDIR /lnk/wd\n`,
    files: () => ({ f: 'owned\n', 'evil.tar': tarOf({ tarred: 'owned\n' }) }),
    check: (r, img, h) => {
      ok(r);
      // Links inside the image resolve inside the image: the files are there, under the link's target.
      assert.is(cat(img, '/lnk/file'), 'owned\n');
      assert.is(cat(img, `${h}/hostdir/tarred`), 'owned\n');
    },
  },
  // Item 4: a bind mount of the context shows the context as the build sees it.
  {
    name: 'RUN --mount=type=bind of the context does not show what .dockerignore leaves out',
    dockerfile:
      `FROM ${Base}\nRUN --mount=type=bind,target=/src ` +
      `sh -c 'cat /src/.env /src/sub/.env > /seen 2>&1; ls -a /src /src/sub >> /seen; true'\n`,
    files: () => ({
      '.dockerignore': '.env\n**/.env\n',
      '.env': 'CTX-SECRET-1\n',
      'sub/.env': 'CTX-SECRET-2\n',
      'sub/kept': 'kept\n',
      kept: 'kept\n',
    }),
    check: (r, img) => {
      ok(r);
      const seen = cat(img, '/seen');
      assert.not.match(seen, /CTX-SECRET/, 'an ignored file was readable');
      assert.match(seen, /kept/, 'the rest of the context was there');
    },
  },
  {
    name: 'RUN --mount=type=bind,source=<ignored dir> is refused or empty',
    dockerfile: `FROM ${Base}\nRUN --mount=type=bind,source=priv,target=/src sh -c 'cat /src/key > /seen 2>&1; true'\n`,
    files: () => ({ '.dockerignore': 'priv\n', 'priv/key': 'CTX-SECRET-3\n' }),
    check: (r, img) => {
      if (r.code === 0) assert.not.match(cat(img, '/seen'), /CTX-SECRET/);
    },
  },
  {
    name: 'RUN --mount=type=bind,source=<link out of the context> does not reach the host',
    dockerfile:
      `FROM ${Base}\nRUN --mount=type=bind,source=out,target=/src ` + `sh -c 'cat /src/secret > /seen 2>&1; true'\n`,
    files: (h) => ({ out: { symlink: `${h}/hostdir` } }),
    check: (r, img) => {
      if (r.code === 0) assert.not.match(cat(img, '/seen'), /HOST-SECRET/);
    },
  },
  // The sandbox's init layer (the mountpoints of a RUN's mounts) looks the target up in the stage's
  // layers. A lower layer's /a was a link to a host dir, a later layer made /a a real directory: the
  // lookup of /a/sub in the lower layer went through that link and copied the host dir's owner,
  // mode and times onto the mountpoint's parent, where the step saw them (a read of the host).
  {
    name: 'a RUN mount target below a directory that a lower layer had as a link to a host dir',
    dockerfile:
      `FROM ${Base}\nRUN ln -s H/hostdir /a\nRUN rm /a && mkdir /a\n` +
      `RUN --mount=type=tmpfs,target=/a/sub/x ls -lnd /a/sub > /seen\n`,
    check: (r, img) => {
      ok(r);
      const seen = cat(img, '/seen');
      assert.match(seen, /^drwxr-xr-x\s+\d+\s+0\s+0\s/, `the mountpoint's parent is a new dir: ${seen}`);
    },
  },
  // Mountpoints inside /dev are made by the launcher in its fresh /dev tmpfs, which holds its own
  // links: fd -> /proc/self/fd, stdin -> /proc/self/fd/0. Made by path before pivot_root, a target
  // below one of them was looked up in the launcher's own fds on the host (a directory fd there
  // would have taken the new dir). The launcher now refuses any link on the way.
  {
    name: 'a RUN mount target below /dev/fd (a link the launcher makes to its own /proc/self/fd)',
    dockerfile: `FROM ${Base}\nRUN --mount=type=tmpfs,target=/dev/fd/0/x true\n`,
    check: (r) => {
      assert.is.not(r.code, 0, 'the target is refused');
      assert.not.match(r.stderr, /Not a directory/, "the lookup went through /dev/fd to the host's /proc/self/fd/0");
      assert.match(r.stderr, /\/dev\/fd\/0\/x/, 'the error names the target');
    },
  },
  // A COPY --from source that is a device node or a FIFO of the stage was opened by the builder on
  // the host, where the store's filesystem honours devices: `b 8 0` would have copied the host's
  // disk into the image (here c 1 3, whose "content" is empty), and a FIFO hung the build for good.
  ...[
    ['a device node', 'mknod /n c 1 3', '/n'],
    ['a device node, through a link to it', 'mknod /n c 1 3 && ln -s n /l', '/l'],
    ['a device node matched by a glob', 'mknod /n c 1 3', '/n*'],
    ['a FIFO', 'mkfifo /n', '/n'],
  ].map(([what, make, src]) => ({
    name: `COPY --from of ${what} the stage made is refused, never opened`,
    dockerfile: `FROM ${Base} AS s\nRUN ${make}\nFROM ${Base}\nCOPY --from=s ${src} /x\n`,
    check: (r: Result) => {
      if (rootless() && make.startsWith('mknod')) return noDeviceNodes(r);
      assert.is.not(r.code, 0, 'the copy of a special file is refused');
      assert.match(r.stderr, /Dockerfile:4:\d+: .*not a regular file, directory or symlink/);
    },
  })),
  // The same for a RUN bind mount from a stage: a read-write one is a copy, which opened a device
  // node (fs.cp copies a device's content), and a device bound read-only is inert anyway (nodev).
  ...['', ',rw'].map((rw) => ({
    name: `RUN --mount=type=bind,from=<stage>,source=<device node>${rw} is refused, never opened`,
    dockerfile:
      `FROM ${Base} AS s\nRUN mknod /n c 1 3\nFROM ${Base}\n` +
      `RUN --mount=type=bind,from=s,source=/n,target=/m${rw} sh -c 'ls -l /m; cat /m'\n`,
    check: (r: Result) => {
      if (rootless()) return noDeviceNodes(r);
      assert.is.not(r.code, 0, 'a bind of a special file is refused');
      assert.match(r.stderr, /Dockerfile:4:\d+: .*not a regular file, directory or symlink/);
    },
  })),
  {
    name: 'RUN --mount=type=bind,from=<one-layer stage>,rw of a dir holding a device node copies no device content',
    dockerfile:
      `FROM scratch AS s\nADD dev.tar /\nFROM ${Base}\n` +
      `RUN --mount=type=bind,from=s,source=/d,target=/m,rw sh -c 'ls -ln /m > /seen'\n`,
    files: () => ({ 'dev.tar': deviceTar() }),
    check: (r, img) => {
      if (rootless()) return noDeviceNodes(r);
      ok(r);
      assert.not.match(cat(img, '/seen'), /^-.* n$/m, 'the device was read into a regular file');
    },
  },
];

for (const row of rows) {
  test(row.name, () => {
    const host = hostTree();
    const ctx = contextOf({ ...row.files?.(host), Dockerfile: row.dockerfile.replace(/\bH\//g, `${host}/`) });
    const before = treeFingerprint(host);
    const img = `hostile:${++n}`;
    const r = tsbuild(['build', '--progress=plain', '-t', img, ctx], { root });
    assert.equal(
      treeFingerprint(host),
      before,
      `the host tree changed (build exit ${r.code})\n${r.stderr.slice(-2000)}`,
    );
    clean(r);
    row.check?.(r, img, host);
    cleanup(ctx, host);
  });
}

// Item 4, the cache key: every file a context bind mount shows is in the step's key.
test('RUN --mount=type=bind of the context: editing a bound file misses, editing an ignored one hits', () => {
  const ctx = context({
    Dockerfile: `FROM ${Base}\nRUN --mount=type=bind,target=/src cat /src/data /src/sub/data > /seen\n`,
    '.dockerignore': 'ignored\n',
    data: 'one\n',
    'sub/data': 'a\n',
    ignored: 'x\n',
  });
  ok(tsbuild(['build', '-q', '-t', 'bindkey:1', ctx], { root }));
  assert.is(cat('bindkey:1', '/seen'), 'one\na\n');
  writeFileSync(join(ctx, 'sub', 'data'), 'b\n');
  ok(tsbuild(['build', '-q', '-t', 'bindkey:2', ctx], { root }));
  assert.is(cat('bindkey:2', '/seen'), 'one\nb\n', 'an edited bound file must change the key');
  writeFileSync(join(ctx, 'ignored'), 'y\n');
  const r = ok(tsbuild(['build', '--progress=plain', '-t', 'bindkey:3', ctx], { root }));
  assert.match(r.stderr + r.stdout, /CACHED/, 'an ignored file is not in the key');
  cleanup(ctx);
});

test.after(() => cleanup(root));
test.run();
