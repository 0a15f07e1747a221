// COPY's copier (native/copy.c, run by src/solver/ops/bulkcopy.ts) against hostile trees: a build context changed
// between its listing and the copy (a directory or file swapped for a symlink to the host), a staging dir holding
// links an earlier source left, odd names, paths longer than PATH_MAX, and the modes the kernel would change
// (setuid bits, a setgid or default-ACL directory). Each row lists the files first (as the builder does from
// its listing), then changes the tree, then copies; the "host" dir outside both trees is fingerprinted before
// and after, and no file of the copy may hold the host's secret. TSBUILD_TEST_COPIER runs the rows with another
// program in the copier's place (e.g. a stand-in running the `cp --parents` this replaced).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getXattr } from '@tsbuild/sys';
import { have, skip, treeFingerprint } from '@tsbuild/testkit';
import { BulkCopy, NameList, type CopyKind } from '../src/solver/ops/bulkcopy.js';
import { nativeProgram } from '../src/native.js';

const copier = process.env.TSBUILD_TEST_COPIER ?? nativeProgram('tsbuild-copy');
const base = mkdtempSync(join(tmpdir(), 'tsbuild-bulkcopy-'));
const SECRET = 'HOST-SECRET-4242';
let n = 0;

interface Dirs {
  /** The context's root; the copied item is `item` below it. */
  ctx: string;
  /** The staging root; the item goes to `target` below it. */
  stage: string;
  host: string;
}

function setup(): Dirs {
  const root = join(base, String(n++));
  const d = { ctx: join(root, 'ctx'), stage: join(root, 'stage'), host: join(root, 'host') };
  mkdirSync(join(d.ctx, 'item'), { recursive: true });
  mkdirSync(join(d.stage, 'target'), { recursive: true });
  mkdirSync(join(d.host, 'dir'), { recursive: true });
  writeFileSync(join(d.host, 'secret'), `${SECRET}\n`, { mode: 0o600 });
  writeFileSync(join(d.host, 'dir', 'f'), `${SECRET}\n`);
  return d;
}

/** Writes files below ctx/item (a string each; a dir when the name ends in /). */
function files(d: Dirs, spec: Record<string, string>): void {
  for (const [rel, content] of Object.entries(spec)) {
    const p = join(d.ctx, 'item', rel);
    if (rel.endsWith('/')) mkdirSync(p, { recursive: true });
    else {
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, content);
    }
  }
}

async function copy(d: Dirs, names: [string, CopyKind][]): Promise<Error | undefined> {
  const bulk = new BulkCopy(d.ctx, d.stage, copier);
  for (const [rel, kind] of names) bulk.add('item', 'target', rel, kind);
  try {
    await bulk.run();
    return undefined;
  } catch (e) {
    return e as Error;
  }
}

const out = (d: Dirs, rel: string) => join(d.stage, 'target', rel);

/** 40 directories of 200 bytes: 8,000 bytes, twice PATH_MAX. */
const longParts = () => Array.from({ length: 40 }, (_, i) => `${String(i).padStart(3, '0')}${'d'.repeat(197)}`);

/**
 * Runs perl's `each` in each of `parts` below `dir` in turn, chdir'ing into it by its name alone (a shell's cd
 * and Node's fs take whole paths, which the kernel refuses past PATH_MAX), then `last`; its output.
 */
function deep(dir: string, parts: string[], each: string, last: string): string {
  const script = `for (@ARGV) { ${each} chdir $_ or die "$_: $!" } ${last}`;
  const r = spawnSync('perl', ['-e', script, ...parts], { cwd: dir, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return r.stdout;
}

interface Row {
  name: string;
  /** Makes the context (and the staging dir), returns the names to copy: the listing. */
  before: (d: Dirs) => [string, CopyKind][];
  /** Changes the trees after the listing, before the copy. */
  between?: (d: Dirs) => void;
  /** The copy fails with this, or (undefined) succeeds. */
  fails?: RegExp;
  /** Checks the result of a copy that succeeded. */
  after?: (d: Dirs) => void;
  needs?: string;
}

const rows: Row[] = [
  {
    name: 'a directory of the context swapped for a symlink to a host dir after the listing: not followed',
    before: (d) => {
      files(d, { 'a.txt': 'a\n', 'sub/f': 'ctx\n' });
      return [
        ['a.txt', 'file'],
        ['sub/f', 'file'],
      ];
    },
    between: (d) => {
      renameSync(join(d.ctx, 'item', 'sub'), join(d.ctx, 'sub.old'));
      symlinkSync(join(d.host, 'dir'), join(d.ctx, 'item', 'sub'));
    },
    fails: /item\/sub: no longer a directory in the build context \(not followed\)/,
  },
  {
    name: 'the copied directory itself swapped for a symlink after the listing: not followed',
    before: (d) => {
      files(d, { f: 'ctx\n' });
      return [['f', 'file']];
    },
    between: (d) => {
      renameSync(join(d.ctx, 'item'), join(d.ctx, 'item.old'));
      symlinkSync(join(d.host, 'dir'), join(d.ctx, 'item'));
    },
    fails: /item: cannot open the directory in the build context \(a symlink or file is there: not followed\)/,
  },
  {
    name: 'a file swapped for a symlink to a host file after the listing: not read, an error naming it',
    before: (d) => {
      files(d, { 'sub/f': 'ctx\n' });
      return [['sub/f', 'file']];
    },
    between: (d) => {
      rmSync(join(d.ctx, 'item', 'sub', 'f'));
      symlinkSync(join(d.host, 'secret'), join(d.ctx, 'item', 'sub', 'f'));
    },
    fails: /item\/sub\/f: no longer a regular file in the build context \(now a symlink\)/,
  },
  {
    name: 'a file gone after the listing: an error naming it, never skipped',
    before: (d) => {
      files(d, { 'x/y': 'y\n', 'x/z': 'z\n' });
      return [
        ['x/y', 'file'],
        ['x/z', 'file'],
      ];
    },
    between: (d) => rmSync(join(d.ctx, 'item', 'x', 'y')),
    fails: /item\/x\/y: cannot open the file in the build context: No such file or directory/,
  },
  {
    // The copier prints the name as it is: a terminal would have run the escape sequence and split the line.
    name: 'a file with control characters in its name gone after the listing: the error shows them escaped',
    before: (d) => {
      files(d, { 'x/bad\x1b[2Jname\nz': 'y\n' });
      return [['x/bad\x1b[2Jname\nz', 'file']];
    },
    between: (d) => rmSync(join(d.ctx, 'item', 'x', 'bad\x1b[2Jname\nz')),
    fails: /^copying from the build context failed: item\/x\/bad\\x1b\[2Jname\\x0az: cannot open the file in the/,
  },
  {
    name: 'a symlink in the staging dir where a directory goes (an earlier source left it): not written through',
    before: (d) => {
      files(d, { 'sub/f': 'ctx\n' });
      symlinkSync(join(d.host, 'dir'), out(d, 'sub'));
      return [['sub/f', 'file']];
    },
    fails: /item\/sub: a symlink or file is in the way of the directory/,
  },
  {
    name: 'the staging target a symlink: not written through',
    before: (d) => {
      files(d, { f: 'ctx\n' });
      rmSync(out(d, ''), { recursive: true });
      symlinkSync(join(d.host, 'dir'), out(d, ''));
      return [['f', 'file']];
    },
    fails: /target: cannot open the directory to copy into \(a symlink or file is there: not followed\)/,
  },
  {
    name: "a symlink in the staging dir at a file's name: replaced, not written through",
    before: (d) => {
      files(d, { f: 'ctx\n', l: '' });
      rmSync(join(d.ctx, 'item', 'l'));
      symlinkSync('../elsewhere', join(d.ctx, 'item', 'l'));
      symlinkSync(join(d.host, 'secret'), out(d, 'f'));
      symlinkSync(join(d.host, 'dir'), out(d, 'l'));
      return [
        ['f', 'file'],
        ['l', 'symlink'],
      ];
    },
    after: (d) => {
      assert.is(readFileSync(out(d, 'f'), 'utf8'), 'ctx\n');
      assert.ok(lstatSync(out(d, 'f')).isFile());
      assert.is(readlinkSync(out(d, 'l')), '../elsewhere');
    },
  },
  {
    name: "a directory in the staging dir at a file's name: an error naming it",
    before: (d) => {
      files(d, { f: 'ctx\n' });
      mkdirSync(out(d, 'f/inside'), { recursive: true });
      return [['f', 'file']];
    },
    fails: /item\/f: a directory is in the way/,
  },
  {
    name: 'a symlink listed as a symlink that became a file: an error naming it',
    before: (d) => {
      symlinkSync('t', join(d.ctx, 'item', 'l'));
      return [['l', 'symlink']];
    },
    between: (d) => {
      rmSync(join(d.ctx, 'item', 'l'));
      writeFileSync(join(d.ctx, 'item', 'l'), 'now a file\n');
    },
    fails: /item\/l: no longer a symlink in the build context/,
  },
  {
    name: 'names with a newline, odd bytes, a leading dash, spaces and a backslash: copied as they are',
    before: (d) => {
      const names = ['new\nline', '-rf', ' sp ace ', 'back\\slash', 'tab\there', 'ünï/名前', '*?[]'];
      files(d, Object.fromEntries(names.map((x) => [x, `${x}\n`])));
      return names.map((x) => [x, 'file']);
    },
    after: (d) => {
      for (const x of ['new\nline', '-rf', ' sp ace ', 'back\\slash', 'tab\there', 'ünï/名前', '*?[]'])
        assert.is(readFileSync(out(d, x), 'utf8'), `${x}\n`);
    },
  },
  {
    name: 'a path longer than PATH_MAX: copied',
    before: (d) => {
      const parts = longParts();
      assert.is(
        deep(join(d.ctx, 'item'), parts, 'mkdir $_ or die "$_: $!";', 'open F, ">f" or die; print F "deep\\n"'),
        '',
      );
      return [[`${parts.join('/')}/f`, 'file']];
    },
    after: (d) => {
      assert.is(deep(out(d, ''), longParts(), '', 'open F, "<f" or die; print <F>'), 'deep\n');
    },
  },
  {
    // The builder kept the first 16 KiB of what the copier said: past that, the reason was cut off.
    name: 'a file gone below a path of 24 KB: the error still says why',
    before: (d) => {
      const parts = [...longParts(), ...longParts().map((p) => `${p}2`), ...longParts().map((p) => `${p}3`)];
      assert.is(deep(join(d.ctx, 'item'), parts, 'mkdir $_ or die "$_: $!";', ''), '');
      return [[`${parts.join('/')}/gone`, 'file']];
    },
    fails: /^copying from the build context failed: item\/000d+\/.*\/gone: cannot open .*: No such file or directory$/s,
  },
  {
    // cp kept holes (--sparse=auto); copy_file_range on ext4 writes them out: 256 MiB on disk for 8 KiB of data.
    name: 'a sparse file: its holes stay holes, its data and size as they are',
    before: (d) => {
      files(d, { sparse: '' });
      const fd = openSync(join(d.ctx, 'item', 'sparse'), 'r+');
      writeSync(fd, 'middle', 100 << 20);
      writeSync(fd, 'end', (256 << 20) - 3);
      closeSync(fd);
      assert.ok(lstatSync(join(d.ctx, 'item', 'sparse')).blocks * 512 < 1 << 20, 'the context file is sparse');
      return [['sparse', 'file']];
    },
    after: (d) => {
      const st = lstatSync(out(d, 'sparse'));
      assert.is(st.size, 256 << 20);
      assert.ok(st.blocks * 512 < 1 << 20, `${st.blocks * 512} bytes on disk`);
      const fd = openSync(out(d, 'sparse'), 'r');
      const at = (pos: number, n: number) => {
        const b = Buffer.alloc(n);
        readSync(fd, b, 0, n, pos);
        return b.toString('latin1');
      };
      assert.is(at(100 << 20, 6), 'middle');
      assert.is(at((256 << 20) - 3, 3), 'end');
      assert.is(at(0, 4), '\0\0\0\0');
      closeSync(fd);
    },
  },
  {
    name: 'setuid, setgid and sticky bits, modes, times, empty files and symlinks: kept (owner: ours)',
    before: (d) => {
      files(d, { 'bin/su': 'su\n', 'bin/sg': 'sg\n', empty: '', 'priv/x': 'x\n', 'sticky/t': 't\n', 'g/h': 'h\n' });
      symlinkSync('../bin/su', join(d.ctx, 'item', 'priv', 'link'));
      const modes: [string, number][] = [
        ['bin/su', 0o4755],
        ['bin/sg', 0o2711],
        ['empty', 0o600],
        ['priv/x', 0o640],
        ['priv', 0o700],
        ['sticky', 0o1777],
        ['g', 0o2750],
      ];
      for (const [p, m] of modes) chmodSync(join(d.ctx, 'item', p), m);
      chownSync(join(d.ctx, 'item', 'priv', 'x'), 1234, 5678);
      utimesSync(join(d.ctx, 'item', 'bin', 'su'), new Date(1_500_000_000_123), new Date(1_600_000_000_456));
      lutimesSync(join(d.ctx, 'item', 'priv', 'link'), new Date(1_400_000_000_000), new Date(1_400_000_000_000));
      return [
        ['bin/sg', 'file'],
        ['bin/su', 'file'],
        ['empty', 'file'],
        ['g/h', 'file'],
        ['priv/link', 'symlink'],
        ['priv/x', 'file'],
        ['sticky/t', 'file'],
      ];
    },
    after: (d) => {
      for (const p of ['bin', 'bin/sg', 'bin/su', 'empty', 'g', 'g/h', 'priv', 'priv/link', 'priv/x', 'sticky']) {
        const a = lstatSync(join(d.ctx, 'item', p));
        const b = lstatSync(out(d, p));
        assert.is(b.mode.toString(8), a.mode.toString(8), `${p}: mode`);
        assert.is(`${b.uid}:${b.gid}`, '0:0', `${p}: owner`);
        if (!a.isDirectory()) {
          assert.is(b.mtimeMs, a.mtimeMs, `${p}: mtime`);
          assert.is(b.size, a.size, `${p}: size`);
        }
      }
      assert.is(readlinkSync(out(d, 'priv/link')), '../bin/su');
      assert.is(readFileSync(out(d, 'bin/su'), 'utf8'), 'su\n');
    },
  },
  {
    name: "beneath a setgid directory of another group: our group, and no setgid bit a directory's source lacks",
    before: (d) => {
      chownSync(out(d, ''), 0, 50);
      chmodSync(out(d, ''), 0o2775);
      files(d, { 'sub/f': 'f\n', g: 'g\n' });
      symlinkSync('g', join(d.ctx, 'item', 'l'));
      chmodSync(join(d.ctx, 'item', 'sub'), 0o755);
      return [
        ['g', 'file'],
        ['l', 'symlink'],
        ['sub/f', 'file'],
      ];
    },
    after: (d) => {
      const got = ['sub', 'sub/f', 'g', 'l'].map((p) => {
        const st = lstatSync(out(d, p));
        return `${p} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      });
      assert.equal(got, ['sub 755 0:0', 'sub/f 644 0:0', 'g 644 0:0', 'l 777 0:0']);
    },
  },
  {
    name: 'beneath a default ACL: the modes asked for, no ACL inherited',
    needs: 'setfacl',
    before: (d) => {
      const set = spawnSync('setfacl', ['-d', '-m', 'u::rwx,g::---,o::---,u:nobody:rwx', out(d, '')]);
      assert.is(set.status, 0, 'setfacl');
      files(d, { 'sub/f': 'f\n', x: 'x\n' });
      chmodSync(join(d.ctx, 'item', 'sub'), 0o755);
      chmodSync(join(d.ctx, 'item', 'x'), 0o755);
      return [
        ['sub/f', 'file'],
        ['x', 'file'],
      ];
    },
    after: (d) => {
      const got = ['sub', 'sub/f', 'x'].map((p) => `${p} ${(lstatSync(out(d, p)).mode & 0o7777).toString(8)}`);
      assert.equal(got, ['sub 755', 'sub/f 644', 'x 755']);
      for (const p of ['sub', 'sub/f', 'x'])
        for (const acl of ['system.posix_acl_access', 'system.posix_acl_default'])
          assert.is(getXattr(out(d, p), acl), undefined, `${p}: ${acl}`);
    },
  },
  {
    name: '3,000 files in 60 directories, shared among threads: every one copied whole',
    before: (d) => {
      const names: [string, CopyKind][] = [];
      for (let i = 0; i < 60; i++)
        for (let j = 0; j < 50; j++) {
          const rel = `p${i}/d${j % 3}/f${j}`;
          files(d, { [rel]: `${rel}\n`.repeat(j * 7 + 1) });
          names.push([rel, 'file']);
        }
      return names;
    },
    after: (d) => {
      for (let i = 0; i < 60; i++)
        for (let j = 0; j < 50; j++) {
          const rel = `p${i}/d${j % 3}/f${j}`;
          assert.is(readFileSync(out(d, rel), 'utf8'), `${rel}\n`.repeat(j * 7 + 1));
        }
    },
  },
  {
    // 200 KB of names: past NameList's 64 KiB they go to the copier's stdin through an unnamed temp file.
    name: '6,000 files whose names pass 64 KiB: every one copied whole',
    before: (d) => {
      const names: [string, CopyKind][] = [];
      for (let i = 0; i < 6000; i++) {
        const rel = `package-${i % 40}-${'x'.repeat(10)}/lib/file-with-a-long-name-${i}.js`;
        files(d, { [rel]: `${i}\n` });
        names.push([rel, 'file']);
      }
      return names;
    },
    after: (d) => {
      for (let i = 0; i < 6000; i++)
        assert.is(
          readFileSync(out(d, `package-${i % 40}-${'x'.repeat(10)}/lib/file-with-a-long-name-${i}.js`), 'utf8'),
          `${i}\n`,
        );
    },
  },
];

for (const row of rows) {
  test(row.name, async () => {
    if (!copier) return skip('tsbuild-copy is not built');
    if (row.needs && !have(row.needs)) return skip(`${row.needs} is not installed`);
    const d = setup();
    const names = row.before(d);
    const host = treeFingerprint(d.host);
    row.between?.(d);
    const err = await copy(d, names);
    assert.equal(treeFingerprint(d.host), host, 'the host dir changed');
    const leaked = spawnSync('grep', ['-rl', SECRET, '.'], { cwd: d.stage, encoding: 'utf8' }).stdout;
    assert.is(leaked, '', 'a host file was copied');
    if (row.fails) {
      assert.ok(err, 'the copy must fail');
      assert.match(err.message, row.fails);
      assert.match(err.message, /^copying from the build context failed: /);
    } else {
      if (err) throw err;
      row.after?.(d);
    }
  });
}

// The thread count the builder leaves to the copier (it passes no --jobs): whatever it is, every file is copied
// once, files and symlinks, a directory of 2,500 files among small ones.
for (const jobs of ['1', '3', '4']) {
  test(`TSBUILD_COPY_JOBS=${jobs}: a directory of 2,500 files among small ones, copied whole`, async () => {
    if (!copier) return skip('tsbuild-copy is not built');
    const d = setup();
    const names: [string, CopyKind][] = [];
    for (let i = 0; i < 2500; i++) names.push([`big/f${String(i).padStart(4, '0')}`, 'file']);
    for (let i = 0; i < 40; i++) names.push([`small${i}/a`, 'file'], [`small${i}/l`, 'symlink']);
    for (const [rel, kind] of names) {
      if (kind === 'file') files(d, { [rel]: `${rel}\n` });
      else symlinkSync('a', join(d.ctx, 'item', rel));
    }
    process.env.TSBUILD_COPY_JOBS = jobs;
    const err = await copy(d, names).finally(() => delete process.env.TSBUILD_COPY_JOBS);
    if (err) throw err;
    // Directories' times are the builder's to set, not the copier's.
    const entries = (dir: string) => treeFingerprint(dir).filter((l) => !l.endsWith(' dir'));
    assert.equal(entries(join(d.stage, 'target')), entries(join(d.ctx, 'item')));
  });
}

test('TSBUILD_COPY_JOBS=0: the copy fails saying what it takes', async () => {
  if (!copier) return skip('tsbuild-copy is not built');
  const d = setup();
  files(d, { f: 'x\n' });
  process.env.TSBUILD_COPY_JOBS = '0';
  const err = await copy(d, [['f', 'file']]).finally(() => delete process.env.TSBUILD_COPY_JOBS);
  assert.match(err?.message ?? '', /TSBUILD_COPY_JOBS takes a number above 0/);
});

test('a copier that cannot be run: the copy fails saying so', async () => {
  const d = setup();
  files(d, { f: 'x\n' });
  const bulk = new BulkCopy(d.ctx, d.stage, join(d.host, 'no-such-copier'));
  bulk.add('item', 'target', 'f', 'file');
  const err = await bulk.run().then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(err?.message ?? '', /cannot run .*no-such-copier: ENOENT/);
});

// What the copier reads is the same whether the names stayed in memory or went to a temp file (and when none can
// be made): every name, in order, each once.
const nameCases: [name: string, count: number, file: boolean][] = [
  ['a few names, in memory', 3, true],
  ['names past 64 KiB, through a temp file', 9000, true],
  ['names past 64 KiB where no temp file can be made', 9000, false],
  ['a name longer than what is gathered in memory', 1, true],
];
for (const [name, count, file] of nameCases)
  test(`NameList: ${name}`, () => {
    const list = new NameList(file ? undefined : () => undefined);
    const want: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const rel = count === 1 ? `${'d/'.repeat(40000)}f` : `dir-${i % 97}/name-${i}`;
      const kind: CopyKind = i % 5 === 0 ? 'symlink' : 'file';
      list.add(rel, kind);
      want.push(Buffer.from(`${kind === 'file' ? 'f' : 'l'}${rel}\0`));
    }
    assert.is(list.count, count);
    const input = list.input();
    const total = Buffer.concat(want).length;
    assert.is('fd' in input, file && total > 1 << 16, 'names past 64 KiB go to a temp file where one can be made');
    let got: Buffer;
    if ('fd' in input) {
      const chunks: Buffer[] = [];
      const b = Buffer.alloc(1 << 16);
      for (let at = 0, k; (k = readSync(input.fd, b, 0, b.length, at)) > 0; at += k)
        chunks.push(Buffer.from(b.subarray(0, k)));
      closeSync(input.fd);
      got = Buffer.concat(chunks);
    } else got = input.bytes;
    assert.ok(got.equals(Buffer.concat(want)), 'the names as added');
  });

// A COPY that fails after its tree was staged and before its copy ran (a type change refused) lets go of the names'
// temp file: without discard() it stayed open, with up to 8 MB of names, until the process ended.
test('BulkCopy.discard: the names of a copy that never runs let go of their temp file', () => {
  const open = () => readdirSync('/proc/self/fd').length;
  const before = open();
  const list = new NameList();
  for (let i = 0; i < 9000; i++) list.add(`dir-${i % 97}/name-${i}`, 'file');
  if (open() === before) return skip('no unnamed temp file can be made in the temp directory');
  const bulk = new BulkCopy(tmpdir(), tmpdir(), '/no-such-copier');
  bulk.addList('item', '', list);
  bulk.discard();
  assert.is(open(), before, 'the temp file of the names is closed');
  assert.ok(bulk.empty, 'no job is left to run');
});

// rm, not rmSync: Node's removal takes whole paths, and the long-path row's are longer than the kernel takes.
test.after(() => void spawnSync('rm', ['-rf', base]));
test.run();
