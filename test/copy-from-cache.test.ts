// COPY --from=<stage> is keyed on what it copies, not on the stage it copies from (as BuildKit:
// checked with the BuildKit of dockerd 20.10). The "dependency recipe" pattern (cargo-chef,
// `COPY --from=deps /app/node_modules`): the source stage re-runs, its output is byte-identical,
// and the COPY and every step after it stay cached. Anything the copy would carry differently
// (content, mode, owner, a symlink's target, a hard link, a new entry) misses; an mtime alone does
// not (BuildKit's content hash leaves it out, and so does ours).
//
// Each row is one build, in order, against the same store: the builder stage's RUN always re-runs
// (the build arg V changes every time), then EXTRA changes /out (or not). A row that expects a hit
// must not run the RUN after the COPY.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';
import { steps } from './helpers/progress.js';

const builderRun =
  'RUN mkdir -p /out/sub && echo same >/out/a && echo 2 >/out/sub/b && ' +
  'head -c 2100000 /dev/zero >/out/big && eval "$EXTRA"';
const dockerfile = `FROM ${Base} AS builder
ARG V
ARG EXTRA=:
RUN mkdir -p /out/many && for i in $(seq 80); do echo $i >/out/many/$i; done
${builderRun}
RUN echo "$V" > /v
FROM ${Base}
ARG W=0
RUN echo "$W" > /w
COPY --from=builder /out/ /app/
RUN ls -lnR /app > /listing && cat /app/a
`;
const copy = 'COPY --from=builder /out/ /app/';
const after = 'RUN ls -lnR /app > /listing && cat /app/a';

const rows: { name: string; extra: string; hit: boolean; why?: RegExp }[] = [
  { name: 'first build', extra: ':', hit: false },
  { name: 'only the builder changed, copied files identical', extra: ':', hit: true },
  { name: 'mtime only', extra: 'touch -d @1000000 /out/a', hit: true },
  { name: 'content changed', extra: 'echo changed > /out/a', hit: false, why: /miss: copied file \/out\/a changed/ },
  { name: 'content back to what an earlier build copied', extra: ':', hit: true },
  { name: 'a file over 1 MiB changed', extra: 'echo x >> /out/big', hit: false },
  { name: 'one of many small files changed', extra: 'echo x >> /out/many/7', hit: false },
  { name: 'mode changed', extra: 'chmod 600 /out/a', hit: false },
  { name: 'owner changed', extra: 'chown 1:1 /out/a', hit: false },
  { name: 'directory mode changed', extra: 'chmod 700 /out/sub', hit: false },
  { name: 'a symlink added', extra: 'ln -s a /out/l', hit: false, why: /miss: copied file \/out\/l is new/ },
  { name: "the symlink's target changed", extra: 'ln -s sub/b /out/l', hit: false },
  { name: 'a hard link added', extra: 'ln /out/a /out/h', hit: false },
  { name: 'the hard link became a copy (same content, mode, owner)', extra: 'cp -p /out/a /out/h', hit: false },
  { name: 'an empty directory added', extra: 'mkdir /out/empty', hit: false },
  { name: 'the same again', extra: 'mkdir /out/empty', hit: true },
];

const root = storeWithBase();
const ctx = context({ Dockerfile: dockerfile });

for (const [i, row] of rows.entries()) {
  test(`COPY --from keyed on content: ${row.name} -> ${row.hit ? 'hit' : 'miss'}`, () => {
    const args = ['build', '--progress=plain', '--explain', '-t', 'copyfrom:1'];
    args.push('--build-arg', `V=${i}`, '--build-arg', `EXTRA=${row.extra}`, ctx);
    const r = ok(tsbuild(args, { root, env: { TSBUILD_TRACE: '1' } }));
    const s = steps(r.stderr);
    assert.ok(s.ran.includes(builderRun) && s.ran.includes('RUN echo "$V" > /v'), `the builder re-ran\n${r.stderr}`);
    // Its new layer is not in the store yet: the copied files are read and hashed.
    // More than 64 files: by tsbuild-walk, as the context's files are.
    assert.match(r.stderr, /COPY --from=builder \/out\/ \/app\/: copied content hashed \(8\d files, by tsbuild-walk\)/);
    if (row.hit) {
      assert.ok(s.cached.includes(copy), `COPY --from is cached\n${r.stderr}`);
      assert.not.ok(s.ran.includes(after), `the RUN after the COPY did not run\n${r.stderr}`);
      assert.match(r.stderr, /COPY --from=builder \/out\/ \/app\/ {2}copied content unchanged: hit/);
    } else {
      assert.ok(s.ran.includes(copy), `COPY --from ran\n${r.stderr}`);
      assert.ok(s.ran.includes(after), `the RUN after the COPY ran\n${r.stderr}`);
      if (row.why) assert.match(r.stderr, row.why);
    }
  });
}

const last = rows.length - 1;
const again = (...extra: string[]) => {
  const args = ['build', '--progress=plain', '--explain', '-t', 'copyfrom:1', '--build-arg', `V=${last}`];
  args.push('--build-arg', `EXTRA=${rows[last].extra}`, ...extra, ctx);
  return ok(tsbuild(args, { root, env: { TSBUILD_TRACE: '1' } }));
};

test('a cached builder stage: the digest of what the copy reads is remembered, no file is read', () => {
  const r = again();
  assert.equal(steps(r.stderr).ran, [], r.stderr);
  assert.match(r.stderr, /COPY --from=builder \/out\/ \/app\/: copied content remembered/);
  assert.not.match(r.stderr, /copied content hashed/);
  assert.match(r.stderr, /COPY --from=builder \/out\/ \/app\/ {2}hit\n/);
});

test('the step before the copy changed: the copy misses for that reason, the next build hits', () => {
  const r = again('--build-arg', 'W=1');
  assert.equal(steps(r.stderr).ran, ['RUN echo "$W" > /w', copy, after], r.stderr);
  assert.match(r.stderr, /COPY --from=builder \/out\/ \/app\/ {2}miss: below a miss: the step before it changed/);
  assert.equal(steps(again('--build-arg', 'W=1').stderr).ran, []);
});

test('a hit gives the files the copy made when it last ran', () => {
  // The last row hit on the row before it: the image holds what that build copied.
  const r = ok(tsbuild(['run', '--rm', 'copyfrom:1', 'sh', '-c', 'cat /app/a; ls -d /app/*'], { root }));
  assert.is(r.stdout, 'same\n/app/a\n/app/big\n/app/empty\n/app/many\n/app/sub\n');
});

test('the copy runs though its digest is remembered: the stage is listed then, and copied whole', () => {
  // A cached rebuild never lists the builder's files (the key needs only the remembered digest); a copy that
  // misses for another reason (the step before it) lists them when it runs, and --explain compares its inputs.
  const r = again('--build-arg', 'W=2');
  assert.equal(steps(r.stderr).ran, ['RUN echo "$W" > /w', copy, after], r.stderr);
  assert.match(r.stderr, /COPY --from=builder \/out\/ \/app\/: copied content remembered/);
  assert.not.match(r.stderr, /copied content hashed/);
  assert.match(r.stderr, /COPY --from=builder \/out\/ \/app\/ {2}miss: below a miss: the step before it changed/);
  const files = ok(tsbuild(['run', '--rm', 'copyfrom:1', 'sh', '-c', 'cat /app/a /w; ls -d /app/*'], { root }));
  assert.is(files.stdout, 'same\n2\n/app/a\n/app/big\n/app/empty\n/app/many\n/app/sub\n');
});

test.after(() => cleanup(root, ctx));
test.run();
