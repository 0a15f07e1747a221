// The build cache through the CLI: a rebuild of an unchanged context runs nothing; one changed
// file re-runs exactly the steps that read it and those after; --explain names the file;
// SOURCE_DATE_EPOCH builds reproduce across stores.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chmodSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';
import { steps } from './helpers/progress.js';

const dockerfile = `FROM ${Base}
WORKDIR /app
COPY deps.txt ./
RUN cat deps.txt > /deps-copy
COPY src/ ./src/
RUN cat src/* > /all-src
ENV LATE=1
RUN echo done > /done
`;

const root = storeWithBase();
const ctx = context({ Dockerfile: dockerfile, 'deps.txt': 'dep-v1\n', 'src/a.js': 'a1\n', 'src/b.js': 'b1\n' });
const build = (...extra: string[]) =>
  ok(tsbuild(['build', '--progress=plain', '-t', 'cached:1', ...extra, ctx], { root }));

test('first build runs every filesystem step', () => {
  const r = build();
  assert.equal(steps(r.stderr).ran, [
    'WORKDIR /app',
    'COPY deps.txt ./',
    'RUN cat deps.txt > /deps-copy',
    'COPY src/ ./src/',
    'RUN cat src/* > /all-src',
    'RUN echo done > /done',
  ]);
});

test('a second build of an unchanged context runs no step and gives the same image', () => {
  const before = ok(tsbuild(['inspect', 'cached:1'], { root })).stdout;
  const r = build();
  const s = steps(r.stderr);
  assert.equal(s.ran, []);
  assert.is(s.cached.length, 6);
  assert.is(
    JSON.parse(ok(tsbuild(['inspect', 'cached:1'], { root })).stdout).ManifestDigest,
    JSON.parse(before).ManifestDigest,
  );
});

test('touching a file without changing it is still a hit (content, not mtime)', () => {
  const t = new Date(Date.now() + 5000);
  utimesSync(join(ctx, 'src', 'a.js'), t, t);
  assert.equal(steps(build().stderr).ran, []);
});

test('changing one file re-runs exactly the steps that read it and their descendants; --explain names it', () => {
  writeFileSync(join(ctx, 'src', 'b.js'), 'b2\n');
  const r = build('--explain');
  assert.equal(steps(r.stderr).ran, ['COPY src/ ./src/', 'RUN cat src/* > /all-src', 'RUN echo done > /done']);
  assert.match(r.stderr, /COPY src\/ \.\/src\/\s+miss: file src\/b\.js changed/);
  assert.match(r.stderr, /RUN cat src\/\* > \/all-src\s+miss: below a miss: the step before it changed/);
  assert.match(r.stderr, /COPY deps\.txt \.\/\s+hit/);
});

test('--explain names a changed build arg and a new file', () => {
  writeFileSync(join(ctx, 'src', 'c.js'), 'c\n');
  const r = build('--explain');
  assert.match(r.stderr, /COPY src\/ \.\/src\/\s+miss: file src\/c\.js is new/);
  const withArg = context({ Dockerfile: `FROM ${Base}\nARG V=1\nRUN echo $V > /v\n` });
  ok(tsbuild(['build', '--progress=plain', withArg], { root }));
  const r2 = ok(tsbuild(['build', '--progress=plain', '--explain', '--build-arg', 'V=2', withArg], { root }));
  assert.match(r2.stderr, /RUN echo \$V > \/v\s+miss: build arg V changed/);
  cleanup(withArg);
});

test('a changed ENV re-runs the RUN steps after it and --explain says which', () => {
  const c = context({ Dockerfile: `FROM ${Base}\nENV MODE=a\nRUN echo $MODE > /m\n` });
  ok(tsbuild(['build', '--progress=plain', c], { root }));
  writeFileSync(join(c, 'Dockerfile'), `FROM ${Base}\nENV MODE=b\nRUN echo $MODE > /m\n`);
  const r = ok(tsbuild(['build', '--progress=plain', '--explain', c], { root }));
  assert.match(r.stderr, /RUN echo \$MODE > \/m\s+miss: ENV MODE changed/);
  cleanup(c);
});

test('--explain names the npm package of a changed file under node_modules (from the lockfile)', () => {
  const lock = {
    name: 'app',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: 'app', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' } },
      'node_modules/left-pad': { version: '1.3.0', license: 'WTFPL' },
      'node_modules/@scope/util': { version: '2.1.0' },
    },
  };
  const app = context({
    Dockerfile: `FROM ${Base}\nCOPY . /app/\n`,
    'package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' } }),
    'package-lock.json': JSON.stringify(lock),
    'node_modules/left-pad/index.js': 'module.exports = 1;\n',
    'node_modules/@scope/util/lib/u.js': 'u\n',
  });
  ok(tsbuild(['build', '--progress=plain', app], { root }));
  writeFileSync(join(app, 'node_modules', 'left-pad', 'index.js'), 'module.exports = 2;\n');
  const r = ok(tsbuild(['build', '--progress=plain', '--explain', app], { root }));
  assert.match(
    r.stderr,
    /miss: file node_modules\/left-pad\/index\.js changed \(npm package left-pad@1\.3\.0, needed by app\)/,
  );
  writeFileSync(join(app, 'node_modules', '@scope', 'util', 'lib', 'u.js'), 'v\n');
  assert.match(
    ok(tsbuild(['build', '--progress=plain', '--explain', app], { root })).stderr,
    /\(npm package @scope\/util@2\.1\.0/,
  );
  cleanup(app);
});

test('--no-cache runs every step again', () => {
  const r = build('--no-cache');
  assert.is(steps(r.stderr).ran.length, 6);
});

test('with SOURCE_DATE_EPOCH two fresh stores give the same image digest', () => {
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const digests = [0, 1].map(() => {
    const r = storeWithBase();
    const out = ok(tsbuild(['build', '-q', '-t', 'repro:1', ctx], { root: r, env })).stdout.trim();
    const manifest = JSON.parse(ok(tsbuild(['inspect', 'repro:1'], { root: r })).stdout).ManifestDigest;
    cleanup(r);
    return [out, manifest];
  });
  assert.equal(digests[0], digests[1]);
});

// A COPY of a directory large enough for the native walker (more than 150 entries), changed one
// way at a time: every change the stat cache can see must re-run the COPY and be named by
// --explain; a change it must not care about must not.
const big: Record<string, string | { symlink: string }> = {
  Dockerfile: `FROM ${Base}\nCOPY tree/ /tree/\n`,
  'tree/a.txt': 'a1',
  'tree/b.txt': 'bb',
  'tree/sp ace.txt': 'spaces',
  'tree/new\nline.txt': 'newline',
  'tree/link': { symlink: 'a.txt' },
  'tree/gone.txt': 'to be removed',
  'tree/deep/er/x.txt': 'deep',
};
for (let i = 0; i < 200; i++) big[`tree/fill/f${i}`] = `filler ${i}`;
const bigCtx = context(big);
const T = (p: string) => join(bigCtx, 'tree', p);
/** Writes new content of the same size and puts the mtime back: only the ctime says so. */
const sneaky = (p: string, content: string) => {
  const st = statSync(p);
  writeFileSync(p, content);
  utimesSync(p, st.atime, st.mtime);
};
const changes: [string, () => void, RegExp | 'hit'][] = [
  ['content, same size and mtime', () => sneaky(T('a.txt'), 'a2'), /miss: file tree\/a\.txt changed/],
  ['mtime only', () => utimesSync(T('a.txt'), new Date(), new Date(Date.now() + 9000)), 'hit'],
  ['mode', () => chmodSync(T('a.txt'), 0o600), /miss: file tree\/a\.txt changed/],
  [
    'symlink target',
    () => {
      unlinkSync(T('link'));
      symlinkSync('b.txt', T('link'));
    },
    /miss: file tree\/link changed/,
  ],
  ['a file added', () => writeFileSync(T('c.txt'), 'c'), /miss: file tree\/c\.txt is new/],
  ['a file removed', () => unlinkSync(T('gone.txt')), /miss: file tree\/gone\.txt was removed/],
  ['a file renamed', () => renameSync(T('b.txt'), T('z.txt')), /miss: file tree\/z\.txt is new/],
  ['an empty directory added', () => mkdirSync(T('empty')), /miss: file tree\/empty is new/],
  [
    'a file became a directory',
    () => {
      unlinkSync(T('z.txt'));
      mkdirSync(T('z.txt'));
    },
    /miss: file tree\/z\.txt changed/,
  ],
  ['one of 200 fillers', () => sneaky(T('fill/f150'), 'FILLER 150'), /miss: file tree\/fill\/f150 changed/],
  ['deep below', () => sneaky(T('deep/er/x.txt'), 'DEEP'), /miss: file tree\/deep\/er\/x\.txt changed/],
  ['a name with a space', () => sneaky(T('sp ace.txt'), 'SPACES'), /miss: file tree\/sp ace\.txt changed/],
  [
    'a name with a newline (shown escaped)',
    () => sneaky(T('new\nline.txt'), 'NEWLINE'),
    /miss: file tree\/new\\x0aline\.txt changed/,
  ],
  [
    '.dockerignore leaves a file out',
    () => writeFileSync(join(bigCtx, '.dockerignore'), 'tree/fill/f1*\n'),
    /miss: file tree\/fill\/f1 was removed/,
  ],
  [
    '.dockerignore reworded, same files',
    () => writeFileSync(join(bigCtx, '.dockerignore'), '# the same\ntree/fill/f1*\n'),
    'hit',
  ],
  ['nothing', () => {}, 'hit'],
];

test('first build of a large tree', () => {
  ok(tsbuild(['build', '--progress=plain', bigCtx], { root }));
});

for (const [what, change, want] of changes) {
  test(`large tree, ${what}: ${want === 'hit' ? 'cached' : 'rebuilt and named'}`, () => {
    change();
    const r = ok(tsbuild(['build', '--progress=plain', '--explain', bigCtx], { root }));
    if (want === 'hit') assert.equal(steps(r.stderr).ran, [], r.stderr);
    else {
      assert.equal(steps(r.stderr).ran, ['COPY tree/ /tree/'], r.stderr);
      assert.match(r.stderr, want);
    }
  });
}

test(
  'a name that is not UTF-8: COPY says so and fails; left out, or read through a bind mount, it works and is ' +
    'keyed',
  () => {
    const c = context({ Dockerfile: `FROM ${Base}\nCOPY d/ /d/\n`, 'd/ok.txt': 'ok' });
    const bad = Buffer.concat([Buffer.from(join(c, 'd') + '/'), Buffer.from([0x62, 0xff])]);
    writeFileSync(bad, 'v1');
    const r = tsbuild(['build', '--progress=plain', c], { root });
    assert.is(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /cannot copy "d\/b\\xff" from the build context: its name \(or its link target\) is not valid UTF-8/,
    );
    assert.not.match(r.stderr, /\n\s+at /);
    writeFileSync(join(c, '.dockerignore'), 'd/b*\n');
    ok(tsbuild(['build', '--progress=plain', c], { root }));
    rmSync(join(c, '.dockerignore'));
    writeFileSync(join(c, 'Dockerfile'), `FROM ${Base}\nRUN --mount=type=bind,source=d,target=/d cat /d/* > /all\n`);
    ok(tsbuild(['build', '--progress=plain', c], { root }));
    assert.equal(steps(ok(tsbuild(['build', '--progress=plain', c], { root })).stderr).ran, []);
    writeFileSync(bad, 'v2');
    assert.equal(steps(ok(tsbuild(['build', '--progress=plain', c], { root })).stderr).ran, [
      'RUN --mount=type=bind,source=d,target=/d cat /d/* > /all',
    ]);
    cleanup(c);
  },
);

test('a source path through a symlink stays in the context', () => {
  const c = context({ Dockerfile: `FROM ${Base}\nCOPY link/passwd /p\n`, link: { symlink: '/etc' } });
  const r = tsbuild(['build', '--progress=plain', c], { root });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /"link\/passwd" not found in the build context/);
  mkdirSync(join(c, 'etc'));
  writeFileSync(join(c, 'etc', 'passwd'), 'from the context\n');
  writeFileSync(join(c, 'Dockerfile'), `FROM ${Base}\nCOPY link/passwd /p\nRUN grep -q "from the context" /p\n`);
  ok(tsbuild(['build', '--progress=plain', c], { root }));
  cleanup(c);
});

test('a directory .dockerignore leaves out whole is not even listed', () => {
  const files: Record<string, string> = {
    Dockerfile: `FROM ${Base}\nCOPY . /app/\nRUN test ! -e /app/vcs && test -f /app/vcs-keep/k\n`,
    '.dockerignore': 'vcs\n',
    'vcs-keep/k': 'k',
  };
  for (let i = 0; i < 300; i++) files[`vcs/objects/o${i}`] = `object ${i}`;
  const c = context(files);
  const r = ok(tsbuild(['build', '--progress=plain', c], { root, env: { TSBUILD_TRACE: '1' } }));
  const listed = Number(/context listed \([^)]*\): \d+ directories, (\d+) entries/.exec(r.stderr)?.[1]);
  assert.ok(listed > 0 && listed < 20, `${listed} entries listed`);
  // A rule that could bring something back below it makes the walk look inside again.
  writeFileSync(join(c, '.dockerignore'), 'vcs\n!vcs/objects/o7\n');
  writeFileSync(
    join(c, 'Dockerfile'),
    `FROM ${Base}\nCOPY . /app/\nRUN test -f /app/vcs/objects/o7 && test ! -e /app/vcs/objects/o8\n`,
  );
  const r2 = ok(tsbuild(['build', '--progress=plain', c], { root, env: { TSBUILD_TRACE: '1' } }));
  assert.ok(Number(/context listed \([^)]*\): \d+ directories, (\d+) entries/.exec(r2.stderr)?.[1]) > 300);
  cleanup(c);
});

// RUN --mount=type=cache between two stages that run at once. They meet through a shared cache
// mount (each waits until the other is inside its RUN, so both hold their cache mount together),
// then each writes a file into the cache mount under test and lists it once the other has written.
const sharingCases = [
  { sharing: 'shared', aSees: 'from-a from-b', bSees: 'from-a from-b' },
  { sharing: 'private', aSees: 'from-a', bSees: 'from-b' },
];
for (const c of sharingCases) {
  const share = c.aSees === c.bSees ? 'share' : 'do not share';
  test(`RUN --mount=type=cache,sharing=${c.sharing}: two steps at once ${share} the directory`, () => {
    const id = `t${process.pid}-${c.sharing}`;
    // Waits for the other stage's mark (a bound wait, so that a solver running one stage at a
    // time fails the step instead of hanging).
    const wait = (f: string) =>
      `i=0; until [ -e /rv/${f} ]; do i=$((i+1)); [ $i -gt 1200 ] && exit 3; sleep 0.05; done`;
    const script = (me: string, other: string) =>
      `touch /rv/${me}-in; ${wait(`${other}-in`)}; touch /c/from-${me}; ` +
      `touch /rv/${me}-wrote; ${wait(`${other}-wrote`)}; echo $(ls /c) > /seen`;
    const stage = (me: string, other: string) => `FROM ${Base} AS ${me}
RUN --mount=type=cache,id=${id}-rv,target=/rv --mount=type=cache,id=${id},sharing=${c.sharing},target=/c \\
    sh -c '${script(me, other)}'
`;
    const final = `FROM ${Base}\nCOPY --from=a /seen /a-seen\nCOPY --from=b /seen /b-seen\n`;
    const c1 = context({ Dockerfile: `${stage('a', 'b')}${stage('b', 'a')}${final}` });
    const img = `sharing:${c.sharing}`;
    ok(tsbuild(['build', '-q', '-t', img, c1], { root }));
    const seen = (f: string) => ok(tsbuild(['run', '--rm', img, 'cat', f], { root })).stdout.trim();
    assert.is(seen('/a-seen'), c.aSees, 'stage a');
    assert.is(seen('/b-seen'), c.bSees, 'stage b');
    cleanup(c1);
  });
}

test.after(() => cleanup(root, ctx, bigCtx));
test.run();
