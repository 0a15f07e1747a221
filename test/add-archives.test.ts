// ADD of local files that may be archives. As BuildKit decides: a file is unpacked when its
// (decompressed) content starts with a tar header; anything else is copied unchanged, whatever
// its name or compression. A compressed file that is not a tar once decompressed used to give
// no file at all (a short one) or a failed build (a long one): data lost with exit 0, or a
// build BuildKit completes. What each row expects is what BuildKit (dockerd 20.10) made of the
// same files, except zstd tars: see the README ("Dockerfile support").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
import { have, skip } from '@tsbuild/testkit';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const kinds = { gz: 'gzip', bz2: 'bzip2', xz: 'xz', zst: 'zstd' } as const;

const compress = (tool: string, data: Buffer) => execFileSync(tool, ['-c'], { input: data, maxBuffer: 1 << 26 });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A tar of one directory holding one file, made by GNU tar. */
function tarOf(format: string, name: string, content: Buffer): Buffer {
  const src = tempDir('tarsrc');
  mkdirSync(join(src, 'd'));
  writeFileSync(join(src, 'd', name), content);
  const args = [`--format=${format}`, '--owner=0', '--group=0', '-cf', '-', '-C', src, 'd'];
  const out = execFileSync('tar', args, { maxBuffer: 1 << 26 });
  cleanup(src);
  return out;
}

test('compressed non-tars, empty files and an empty tar are copied as they are; tars of every kind unpacked', () => {
  const missing = Object.values(kinds).filter((k) => !have(k));
  if (missing.length) return skip(`${missing.join(', ')} not installed`);
  const short = Buffer.from('hello, plain text\n');
  const long = Buffer.from(randomBytes(6000).toString('base64'));
  const copied: Record<string, Buffer> = {
    empty: Buffer.alloc(0),
    'empty.gz': compress('gzip', Buffer.alloc(0)),
    // 10 KiB of zero blocks: a tar with no member. BuildKit's first tar header read ends at once.
    'nothing.tar': Buffer.alloc(10240),
    'text.tar.gz': compress('gzip', long), // the name says tar; the content decides
    // A gzip stream cut before a whole block comes out of it: not a tar either.
    'cut.gz': compress('gzip', tarOf('ustar', 'f', randomBytes(4000))).subarray(0, 20),
  };
  for (const [ext, tool] of Object.entries(kinds)) {
    copied[`short.${ext}`] = compress(tool, short);
    copied[`long.${ext}`] = compress(tool, long);
  }
  const inner = Buffer.from('inside the archive\n');
  const archives: Record<string, Buffer> = {
    'plain.tar': tarOf('ustar', 'plain', inner),
    'v7.tar': tarOf('v7', 'v7', inner),
    'gnu.tar': tarOf('gnu', 'gnu', inner),
  };
  for (const [ext, tool] of Object.entries(kinds)) archives[`t.tar.${ext}`] = compress(tool, tarOf('pax', tool, inner));

  const lines = [`FROM ${Base}`];
  for (const name of Object.keys(copied)) lines.push(`ADD ${name} /copied/`);
  for (const name of Object.keys(archives)) lines.push(`ADD ${name} /unpacked/`);
  const ctx = context({ Dockerfile: lines.join('\n') + '\n' });
  for (const [name, data] of Object.entries({ ...copied, ...archives })) writeFileSync(join(ctx, name), data);
  ok(t(['build', '-q', '-t', 'add/kinds:1', ctx]));

  const list = 'cd /copied && sha256sum * && cd /unpacked && find . | sort';
  const out = ok(t(['run', '--rm', 'add/kinds:1', 'sh', '-c', list])).stdout.split('\n');
  const [sums, found] = [out.filter((l) => / {2}/.test(l)), out.filter((l) => l.startsWith('.'))];
  const byName = (a: string, b: string) => (a.slice(66) < b.slice(66) ? -1 : 1);
  const want = Object.entries(copied)
    .map(([name, data]) => `${sha(data)}  ${name}`)
    .sort(byName);
  assert.equal(sums, want, 'every non-archive arrives byte for byte');
  const members = ['plain', 'v7', 'gnu', ...Object.values(kinds)].map((m) => `./d/${m}`);
  assert.equal(found, ['.', './d', ...members.sort()], 'every tar unpacked, nothing else there');
  const contents = ok(t(['run', '--rm', 'add/kinds:1', 'sh', '-c', 'cat /unpacked/d/*'])).stdout;
  assert.is(contents, inner.toString().repeat(members.length));
  cleanup(ctx);
});

test('a tar cut short fails the build with a clear error and tags nothing (plain and gzip)', () => {
  const whole = tarOf('ustar', 'big', randomBytes(8000));
  const cut = whole.subarray(0, 3000);
  for (const [name, data] of [
    ['cut.tar', cut],
    ['cut.tar.gz', compress('gzip', cut)],
  ] as const) {
    const ctx = context({ Dockerfile: `FROM ${Base}\nADD ${name} /x/\n` });
    writeFileSync(join(ctx, name), data);
    const r = t(['build', '-t', 'add/cut:1', ctx]);
    assert.is.not(r.code, 0, `${name}: the build must fail`);
    assert.match(r.stderr, /Dockerfile:2/);
    assert.match(r.stderr, new RegExp(`ADD could not unpack .*${name.replace(/\./g, '\\.')}`));
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    assert.is.not(t(['inspect', 'add/cut:1']).code, 0, `${name}: nothing tagged`);
    cleanup(ctx);
  }
});

test.after(() => cleanup(root));
test.run();
