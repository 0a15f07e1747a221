// Cache-aware rebuild scripts through the CLI (issue 19): `build --dry-run` against the real build that
// follows it, `--explain=json` against its documented schema (docs/explain.schema.json), node-aware
// miss reasons from hand-made lockfiles, a failed build's finished steps shared through a registry,
// and `tsbuild cache ls|du|prune`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  realpathSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Ajv } from 'ajv';
import { createServer } from 'node:http';
import { networkInterfaces } from 'node:os';
import { skip, startRegistry, type TestRegistry } from '@tsbuild/testkit';
import {
  Base,
  cleanup,
  context,
  ok,
  repo,
  storeWithBase,
  tempDir,
  tsbuild,
  tsbuildP,
  type Result,
  tempDirs,
} from './helpers/cli.js';
import { steps } from './helpers/progress.js';

interface Step {
  stage: string;
  index: number;
  instruction: string;
  status: string;
  cached: boolean;
  key: string | null;
  reason: { kind: string; input: string | null; text: string; npm?: { changes: { name: string }[] } } | null;
}
interface Report {
  schemaVersion: number;
  dryRun: boolean;
  image: { id: string } | null;
  allCached: boolean;
  steps: Step[];
}

const schema = JSON.parse(readFileSync(join(repo, 'docs', 'explain.schema.json'), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);
/** Parses a report and checks it against the documented schema. */
function report(text: string): Report {
  const doc = JSON.parse(text) as Report;
  if (!validate(doc)) throw new Error(`the report does not match the schema: ${JSON.stringify(validate.errors)}`);
  return doc;
}

const { temp, dirs } = tempDirs();

/** Every entry of a store: path, type, mode, size, mtime, and content digest (or link target). */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const st = lstatSync(abs);
      let what = '';
      if (st.isFile()) what = createHash('sha256').update(readFileSync(abs)).digest('hex');
      else if (st.isSymbolicLink()) what = readlinkSync(abs);
      out.push(`${rel}${name} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.ino} ${what}`);
      if (st.isDirectory()) walk(abs, `${rel}${name}/`);
    }
  };
  walk(root, '');
  return out;
}

/** A dry run's report (JSON on stdout), checked against the schema and against the store left alone. */
function dryRun(root: string, args: string[]): Report {
  const before = listing(root);
  const r = ok(tsbuild(['build', '--dry-run', '--explain=json', ...args], { root }));
  const doc = report(r.stdout);
  assert.is(doc.dryRun, true);
  assert.is(doc.image, null);
  assert.equal(listing(root), before, 'a dry run changed the store');
  return doc;
}

/** A real build with plain progress and its JSON report in a file. */
function build(root: string, args: string[]): { r: Result; doc: Report } {
  const file = join(temp('explain'), 'explain.json');
  const r = ok(tsbuild(['build', '--progress=plain', '--explain=json', '--explain-file', file, ...args], { root }));
  return { r, doc: report(readFileSync(file, 'utf8')) };
}

const wouldRun = (doc: Report) => doc.steps.filter((s) => !s.cached).map((s) => s.instruction);
const reasons = (doc: Report) =>
  Object.fromEntries(doc.steps.filter((s) => s.reason).map((s) => [s.instruction, s.reason!.text]));

/** The dry run names exactly the steps the build then runs, with the same keys and reasons. */
function dryThenBuild(root: string, args: string[]): Report {
  const dry = dryRun(root, args);
  const { r, doc } = build(root, args);
  assert.equal(wouldRun(dry), steps(r.stderr).ran, 'dry run and build disagree on what runs');
  assert.equal(
    dry.steps.map((s) => [s.instruction, s.status, s.key]),
    doc.steps.map((s) => [s.instruction, s.status, s.key]),
  );
  assert.equal(reasons(dry), reasons(doc));
  assert.is(doc.dryRun, false);
  assert.ok(doc.image?.id.startsWith('sha256:'));
  return dry;
}

const root = storeWithBase(temp('store'));
// The base is also tagged under a second name that a case moves to another image.
ok(tsbuild(['tag', Base, 'rebuild/base:1'], { root }));
// MODE is declared late: only the RUN after it sees it (and has it in its key).
const dockerfile = `FROM rebuild/base:1
WORKDIR /app
COPY deps.txt ./
RUN cat deps.txt > /deps
COPY src/ ./src/
RUN cat src/* > /all-src
ARG MODE=dev
RUN echo "$MODE" > /mode
LABEL built=yes
`;
const ctx = context({ Dockerfile: dockerfile, 'deps.txt': 'dep-v1\n', 'src/a.js': 'a1\n', 'src/b.js': 'b1\n' });
dirs.push(ctx);

const cases: {
  name: string;
  change: () => void;
  args?: string[];
  runs: string[];
  why?: Record<string, RegExp>;
}[] = [
  {
    name: 'first build',
    change: () => {},
    runs: [
      'WORKDIR /app',
      'COPY deps.txt ./',
      'RUN cat deps.txt > /deps',
      'COPY src/ ./src/',
      'RUN cat src/* > /all-src',
      'RUN echo "$MODE" > /mode',
    ],
    why: { 'WORKDIR /app': /^no earlier build of this step$/ },
  },
  { name: 'unchanged context', change: () => {}, runs: [] },
  {
    name: 'changed file',
    change: () => writeFileSync(join(ctx, 'src', 'b.js'), 'b2\n'),
    runs: ['COPY src/ ./src/', 'RUN cat src/* > /all-src', 'RUN echo "$MODE" > /mode'],
    why: {
      'COPY src/ ./src/': /^file src\/b\.js changed$/,
      'RUN cat src/* > /all-src': /^below a miss: the step before it changed \(.*COPY src\/ \.\/src\/\)$/,
    },
  },
  {
    name: 'changed build arg',
    change: () => {},
    args: ['--build-arg', 'MODE=prod'],
    runs: ['RUN echo "$MODE" > /mode'],
    why: { 'RUN echo "$MODE" > /mode': /^build arg MODE changed$/ },
  },
  {
    name: 'below a miss, a step whose own input changed names it',
    change: () => writeFileSync(join(ctx, 'deps.txt'), 'dep-v2\n'),
    args: ['--build-arg', 'MODE=test'],
    runs: [
      'COPY deps.txt ./',
      'RUN cat deps.txt > /deps',
      'COPY src/ ./src/',
      'RUN cat src/* > /all-src',
      'RUN echo "$MODE" > /mode',
    ],
    why: {
      'COPY deps.txt ./': /^file deps\.txt changed$/,
      'COPY src/ ./src/': /^below a miss/,
      'RUN echo "$MODE" > /mode': /^build arg MODE changed$/,
    },
  },
  {
    name: 'moved base tag',
    change: () => {
      // Another image under the same tag: every step misses, the first one because of the base.
      const other = context({ Dockerfile: `FROM ${Base}\nRUN echo other > /other\n` });
      dirs.push(other);
      ok(tsbuild(['build', '-q', '-t', 'rebuild/base:1', other], { root }));
    },
    args: ['--build-arg', 'MODE=test'],
    runs: [
      'WORKDIR /app',
      'COPY deps.txt ./',
      'RUN cat deps.txt > /deps',
      'COPY src/ ./src/',
      'RUN cat src/* > /all-src',
      'RUN echo "$MODE" > /mode',
    ],
    why: { 'WORKDIR /app': /^base image rebuild\/base:1 now has another digest$/ },
  },
];
for (const c of cases)
  test(`dry run, then build: ${c.name}`, () => {
    c.change();
    const dry = dryThenBuild(root, [...(c.args ?? []), ctx]);
    assert.equal(wouldRun(dry), c.runs);
    assert.is(dry.allCached, c.runs.length === 0);
    for (const [step, re] of Object.entries(c.why ?? {})) assert.match(reasons(dry)[step] ?? '', re, step);
  });

test('multi-stage: a COPY --from of a stage that would run is not-computed, a miss as the build finds', () => {
  const app = context({
    Dockerfile: [
      `FROM ${Base} AS build`,
      'COPY a.txt /a.txt',
      'RUN cat /a.txt > /out',
      `FROM ${Base}`,
      'COPY --from=build /out /out',
      'RUN cat /out > /final',
      '',
    ].join('\n'),
    'a.txt': 'one\n',
  });
  dirs.push(app);
  ok(tsbuild(['build', '-q', app], { root }));
  // Unchanged: the stage's snapshots are in the store, so the copied content is keyed as the build keys it.
  dryThenBuild(root, [app]);
  writeFileSync(join(app, 'a.txt'), 'two\n');
  const dry = dryRun(root, [app]);
  const copy = dry.steps.find((s) => s.instruction.startsWith('COPY --from'))!;
  assert.is(copy.reason?.kind, 'not-computed');
  const r = ok(tsbuild(['build', '--progress=plain', app], { root }));
  assert.equal(wouldRun(dry), steps(r.stderr).ran);
});

test('a dry run after the build it predicted: everything cached; the text report goes to stdout', () => {
  const r = ok(tsbuild(['build', '--dry-run', '--build-arg', 'MODE=test', ctx], { root }));
  assert.match(r.stdout, /^Dry run \(nothing was run or written\):/);
  assert.match(r.stdout, /RUN cat src\/\* > \/all-src {2}hit/);
  assert.not.match(r.stdout, /miss/);
});

test('a dry run writes nothing even where a build would: no image, no tag, no cache record', () => {
  const fresh = context({ Dockerfile: `FROM ${Base}\nRUN echo fresh > /f\n`, x: 'x' });
  dirs.push(fresh);
  const before = ok(tsbuild(['images', '-q'], { root })).stdout;
  const doc = dryRun(root, ['-t', 'never:1', '--iidfile', join(fresh, 'iid'), fresh]);
  assert.equal(wouldRun(doc), ['RUN echo fresh > /f']);
  assert.is(ok(tsbuild(['images', '-q'], { root })).stdout, before);
  assert.throws(() => readFileSync(join(fresh, 'iid')));
});

test('bad uses of --explain and --dry-run are usage errors naming the flag', () => {
  const table: [string[], RegExp][] = [
    [['--explain=yaml'], /--explain=yaml: not one of text, json/],
    [['-q', '--explain=json'], /-q and --explain=json both print on stdout/],
  ];
  for (const [args, re] of table) {
    const r = tsbuild(['build', ...args, ctx], { root });
    assert.is(r.code, 2, args.join(' '));
    assert.match(r.stderr, re);
  }
  const missing = context({ Dockerfile: 'FROM nowhere.invalid/x:1\nRUN true\n' });
  dirs.push(missing);
  const r = tsbuild(['build', '--dry-run', missing], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /a dry run does not pull/);
});

test('the schema rejects what it should (the validator is not a rubber stamp)', () => {
  const good = dryRun(root, ['--build-arg', 'MODE=test', ctx]);
  const bad: [string, (d: Report) => void][] = [
    ['another version', (d) => (d.schemaVersion = 2)],
    ['a cached step with a reason', (d) => (d.steps[2].reason = d.steps[2].reason ?? ({ kind: 'file' } as never))],
    ['a miss without a reason', (d) => Object.assign(d.steps[2], { status: 'miss', cached: false, reason: null })],
    ['an unknown field', (d) => Object.assign(d, { extra: 1 })],
  ];
  for (const [name, spoil] of bad) {
    const d = structuredClone(good);
    spoil(d);
    assert.not.ok(validate(d), name);
  }
});

test('npm: a lockfile change is named package by package, with the direct dependency that pulls it in', () => {
  const lock = (lodash: string, extra: boolean) =>
    JSON.stringify({
      name: 'app',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'app', version: '1.0.0', dependencies: { express: '^4.17.1' } },
        'node_modules/express': {
          version: '4.17.1',
          dependencies: { lodash: '^4.17.0', ...(extra ? { debug: '^4' } : {}) },
        },
        'node_modules/lodash': { version: lodash },
        ...(extra ? { 'node_modules/debug': { version: '4.3.4' } } : {}),
      },
    });
  const app = context({
    Dockerfile: [
      `FROM ${Base}`,
      'WORKDIR /app',
      'COPY package.json package-lock.json ./',
      'RUN wc -c package-lock.json > /n',
      '',
    ].join('\n'),
    'package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { express: '^4.17.1' } }),
    'package-lock.json': lock('4.17.20', false),
  });
  dirs.push(app);
  ok(tsbuild(['build', '-q', app], { root }));
  writeFileSync(join(app, 'package-lock.json'), lock('4.17.21', true));
  const dry = dryThenBuild(root, [app]);
  const copy = dry.steps.find((s) => s.instruction.startsWith('COPY'))!;
  assert.is(copy.reason?.kind, 'file');
  assert.is(copy.reason?.input, 'package-lock.json');
  assert.equal(copy.reason?.npm?.changes, [
    { name: 'debug', location: 'node_modules/debug', before: null, after: '4.3.4', via: ['express'] },
    { name: 'lodash', location: 'node_modules/lodash', before: '4.17.20', after: '4.17.21', via: ['express'] },
  ]);
  // The text says it in words, after a build as in a dry run.
  writeFileSync(join(app, 'package-lock.json'), lock('4.17.20', true));
  const text = ok(tsbuild(['build', '--progress=plain', '--explain', app], { root })).stderr;
  assert.match(
    text,
    new RegExp(
      'COPY package\\.json package-lock\\.json \\./  miss: file package-lock\\.json changed: ' +
        'lodash 4\\.17\\.21 → 4\\.17\\.20 \\(via express\\)',
    ),
  );
});

let reg: TestRegistry | undefined;
const registry = async () => (reg ??= await startRegistry());
test('a build failing at step 5 of 8 exports steps 1-4; the next, from an empty store, starts at step 5', async () => {
  const reg = await registry();
  const failing = (fail: boolean) => `FROM ${Base}
WORKDIR /w
COPY one.txt ./
RUN cat one.txt > /one
RUN ${fail ? 'echo broken >&2; exit 3' : 'echo fixed > /five'}
RUN echo six > /six
RUN echo seven > /seven
RUN echo eight > /eight
`;
  const app = context({ Dockerfile: failing(true), 'one.txt': '1\n' });
  dirs.push(app);
  const cacheRef = `${reg.host}/rebuild:cache`;
  const storeA = storeWithBase(temp('store-fail-a'));
  const a = tsbuild(['build', '--progress=plain', '--cache-to', `type=registry,ref=${cacheRef}`, app], {
    root: storeA,
  });
  assert.is(a.code, 1, a.stderr);
  assert.match(a.stderr, /\[stage-0 5\/8\] RUN echo broken/);
  assert.match(a.stderr, /exporting the cache of the 3 steps that finished/);
  assert.equal(steps(a.stderr).ran, ['WORKDIR /w', 'COPY one.txt ./', 'RUN cat one.txt > /one']);

  // A fresh runner: an empty store (but for the base), the fixed Dockerfile, the registry's cache.
  writeFileSync(join(app, 'Dockerfile'), failing(false));
  const storeB = storeWithBase(temp('store-fail-b'));
  const args = ['--cache-from', `type=registry,ref=${cacheRef}`, app];
  const dry = dryRun(storeB, args);
  assert.equal(wouldRun(dry), [
    'RUN echo fixed > /five',
    'RUN echo six > /six',
    'RUN echo seven > /seven',
    'RUN echo eight > /eight',
  ]);
  const b = ok(tsbuild(['build', '--progress=plain', ...args], { root: storeB }));
  assert.equal(steps(b.stderr).cached, ['WORKDIR /w', 'COPY one.txt ./', 'RUN cat one.txt > /one']);
  assert.equal(steps(b.stderr).ran, wouldRun(dry));
});

/** An address of this host that a RUN step's private network reaches (loopback is out of its reach). */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

test('cache mounts travel: --cache-to mounts=ID exports one; a fresh store with --cache-from starts warm', async () => {
  const ip = hostAddress();
  if (!ip) return skip('no non-loopback IPv4 address for a RUN step to download from');
  const reg = await registry();
  // The "package registry": counts downloads.
  let downloads = 0;
  const server = createServer((_req, res) => {
    downloads++;
    res.end('package-bytes\n');
  });
  await new Promise<void>((r) => server.listen(0, ip, r));
  try {
    const url = `http://${ip}:${(server.address() as { port: number }).port}/pkg.tgz`;
    const app = context({
      Dockerfile: [
        `FROM ${Base}`,
        'ARG BUST=1',
        `RUN --mount=type=cache,id=dl,target=/cache test -s /cache/pkg.tgz || wget -q -O /cache/pkg.tgz ${url}; \\`,
        '    cp /cache/pkg.tgz /pkg.tgz && ls /cache > /listing && rm -f /cache/extra-* && \\',
        '    echo "$BUST" > "/cache/extra-$BUST" && echo "$BUST" > /bust',
        '',
      ].join('\n'),
    });
    dirs.push(app);
    const cacheRef = `${reg.host}/rebuild:mounts`;
    const storeA = storeWithBase(temp('store-mounts-a'));
    const a = await tsbuildP(
      ['build', '--progress=plain', '--cache-to', `type=registry,ref=${cacheRef},mounts=dl`, app],
      { root: storeA },
    );
    ok(a);
    assert.is(downloads, 1);
    assert.match(a.stderr, /1 cache mounts/);

    // A fresh runner: the step runs (another BUST), with the cache mount restored: no download. It
    // removes extra-1 and adds extra-2 in the mount, and exports only that, on top of what it restored.
    const storeB = storeWithBase(temp('store-mounts-b'));
    const out = join(storeB, 'out');
    const cacheRef2 = `${reg.host}/rebuild:mounts2`;
    const b = await tsbuildP(
      [
        'build',
        '--progress=plain',
        '--build-arg',
        'BUST=2',
        '--cache-from',
        cacheRef,
        '--cache-to',
        `type=registry,ref=${cacheRef2},mounts=dl`,
        '-o',
        `type=local,dest=${out}`,
        app,
      ],
      { root: storeB },
    );
    ok(b);
    const ran = steps(b.stderr).ran;
    assert.is(ran.length, 1);
    assert.match(ran[0], /^RUN --mount=type=cache,id=dl/);
    assert.match(b.stderr, /restored cache mount dl from /);
    assert.is(downloads, 1, 'the restored cache mount was not used');
    assert.is(readFileSync(join(out, 'pkg.tgz'), 'utf8'), 'package-bytes\n');
    assert.is(readFileSync(join(out, 'listing'), 'utf8'), 'extra-1\npkg.tgz\n');
    // The mount's content stays out of the image.
    assert.not.ok(existsSync(join(out, 'cache', 'pkg.tgz')));
    const chain = async (ref: string) => {
      const [host, rest] = [ref.slice(0, ref.indexOf('/')), ref.slice(ref.indexOf('/') + 1)];
      const [repo, tag] = rest.split(':');
      const manifest = (await (
        await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).json()) as { config: { digest: string } };
      const config = (await (await fetch(`http://${host}/v2/${repo}/blobs/${manifest.config.digest}`)).json()) as {
        records: { mount?: string; layers?: { digest: string; size: number }[] }[];
      };
      return config.records.find((r) => r.mount === 'dl')!.layers!;
    };
    const [first, second] = [await chain(cacheRef), await chain(cacheRef2)];
    assert.is(first.length, 1);
    assert.is(second.length, 2, 'what changed goes on top of the restored layer');
    assert.is(second[0].digest, first[0].digest);

    // Another fresh runner restores both layers: extra-1 is gone (a whiteout), extra-2 is there.
    const storeD = storeWithBase(temp('store-mounts-d'));
    const outD = join(storeD, 'out');
    ok(
      await tsbuildP(
        ['build', '-q', '--build-arg', 'BUST=4', '--cache-from', cacheRef2, '-o', `type=local,dest=${outD}`, app],
        { root: storeD },
      ),
    );
    assert.is(readFileSync(join(outD, 'listing'), 'utf8'), 'extra-2\npkg.tgz\n');
    assert.is(downloads, 1);

    // The control: a fresh store without --cache-from downloads.
    const storeC = storeWithBase(temp('store-mounts-c'));
    ok(await tsbuildP(['build', '-q', '--build-arg', 'BUST=3', app], { root: storeC }));
    assert.is(downloads, 2);
  } finally {
    server.close();
  }
});

/**
 * A context that can run the host's npm in a busybox image: node, its shared libraries and npm, copied
 * (never linked: the step must not reach the host's files) under node/, run through the copied loader.
 */
function npmContext(files: Record<string, string>): string | undefined {
  // The node running this test, and the npm installed beside it (PREFIX/bin/node, PREFIX/lib/node_modules/npm).
  const node = realpathSync(process.execPath);
  const npm = join(dirname(node), '..', 'lib', 'node_modules', 'npm');
  if (!existsSync(node) || !existsSync(join(npm, 'bin', 'npm-cli.js'))) return undefined;
  const ldd = spawnSync('ldd', [node], { encoding: 'utf8' });
  if (ldd.status !== 0) return undefined;
  const libs = [...ldd.stdout.matchAll(/(\/\S+\.so[.\d]*) \(0x/g)].map((m) => m[1]);
  const ctx = context(files);
  mkdirSync(join(ctx, 'node'));
  for (const f of [node, ...libs]) cpSync(f, join(ctx, 'node', basename(f)), { dereference: true });
  cpSync(npm, join(ctx, 'node', 'npm'), { recursive: true, dereference: true });
  return ctx;
}

test('npm ci in a fresh store, with --cache-from carrying the npm cache mount, downloads nothing', async () => {
  const ip = hostAddress();
  if (!ip) return skip('no non-loopback IPv4 address for a RUN step to reach a package registry');
  const reg = await registry();
  // A one-package npm registry (a tarball made here), counting what it serves.
  const pkg = tempDir('left-pad');
  dirs.push(pkg);
  mkdirSync(join(pkg, 'package'));
  writeFileSync(join(pkg, 'package', 'package.json'), '{"name":"left-pad","version":"1.3.0","main":"index.js"}\n');
  writeFileSync(join(pkg, 'package', 'index.js'), 'module.exports = 1;\n');
  const tar = spawnSync('tar', ['-C', pkg, '-czf', join(pkg, 'left-pad.tgz'), 'package'], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  const tarball = readFileSync(join(pkg, 'left-pad.tgz'));
  const served: string[] = [];
  const server = createServer((req, res) => {
    served.push(req.url ?? '');
    res.end(tarball);
  });
  await new Promise<void>((r) => server.listen(0, ip, r));
  try {
    const base = `http://${ip}:${(server.address() as { port: number }).port}`;
    const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
    const deps = { 'left-pad': '1.3.0' };
    const app = npmContext({
      'app/package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: deps }),
      'app/package-lock.json': JSON.stringify({
        name: 'app',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'app', version: '1.0.0', dependencies: deps },
          'node_modules/left-pad': { version: '1.3.0', resolved: `${base}/left-pad/-/left-pad-1.3.0.tgz`, integrity },
        },
      }),
      Dockerfile: [
        `FROM ${Base}`,
        'COPY app/ /app/',
        'WORKDIR /app',
        'ARG BUST=1',
        'RUN --mount=type=bind,source=node,target=/opt/node --mount=type=cache,id=npm,target=/root/.npm \\',
        '    HOME=/root /opt/node/ld-linux-x86-64.so.2 --library-path /opt/node /opt/node/node \\',
        '    /opt/node/npm/bin/npm-cli.js ci --no-audit --no-fund --no-update-notifier && echo "$BUST" > /bust',
        '',
      ].join('\n'),
    });
    if (!app) return skip('no npm installed beside the node running the tests (PREFIX/lib/node_modules/npm)');
    dirs.push(app);
    const cacheRef = `${reg.host}/rebuild:npm`;
    const storeA = storeWithBase(temp('store-npm-a'));
    ok(
      await tsbuildP(['build', '-q', '--cache-to', `type=registry,ref=${cacheRef},mode=max,mounts=npm`, app], {
        root: storeA,
      }),
    );
    assert.equal(served, ['/left-pad/-/left-pad-1.3.0.tgz']);

    // A fresh runner, another BUST: npm ci runs, and finds left-pad in the restored cache.
    const storeB = storeWithBase(temp('store-npm-b'));
    const out = join(storeB, 'out');
    const b = await tsbuildP(
      [
        'build',
        '--progress=plain',
        '--build-arg',
        'BUST=2',
        '--cache-from',
        cacheRef,
        '-o',
        `type=local,dest=${out}`,
        app,
      ],
      { root: storeB },
    );
    ok(b);
    assert.match(b.stderr, /restored cache mount npm from /);
    assert.match(b.stderr, /added 1 package/);
    assert.equal(served, ['/left-pad/-/left-pad-1.3.0.tgz'], 'npm ci downloaded again');
    assert.is(readFileSync(join(out, 'app', 'node_modules', 'left-pad', 'index.js'), 'utf8'), 'module.exports = 1;\n');
  } finally {
    server.close();
  }
});

test('bad mounts= and max-size= values are usage errors', () => {
  const table: [string, string, RegExp][] = [
    ['--cache-from', 'type=registry,ref=localhost:5000/x:1,mounts=dl', /mounts= only applies to --cache-to/],
    ['--cache-to', 'type=registry,ref=localhost:5000/x:1,mounts=', /mounts= needs at least one id/],
    ['--cache-to', 'type=registry,ref=localhost:5000/x:1,mounts=a,b,max-size=lots', /invalid size "lots"/],
  ];
  for (const [flag, value, re] of table) {
    const r = tsbuild(['build', flag, value, ctx], { root });
    assert.is(r.code, 2, `${flag} ${value}`);
    assert.match(r.stderr, re);
  }
});

test('cache ls, du and prune: records with the step that made them; prune by age, by size, all', () => {
  const store = storeWithBase(temp('store-cache-cmd'));
  const app = context({ Dockerfile: `FROM ${Base}\nRUN echo a > /a\nRUN head -c 300000 /dev/urandom > /big\n` });
  dirs.push(app);
  ok(tsbuild(['build', '-q', '-t', 'kept:1', app], { root: store }));
  writeFileSync(join(app, 'Dockerfile'), `FROM ${Base}\nRUN echo b > /b\n`);
  ok(tsbuild(['build', '-q', app], { root: store }));
  const ls = () =>
    ok(tsbuild(['cache', 'ls', '--format', 'json'], { root: store }))
      .stdout.trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; size: number; step: string | null; inImage: boolean });
  const steps0 = ls().map((e) => e.step);
  for (const s of ['[stage-0 2/3] RUN echo a > /a', '[stage-0 2/2] RUN echo b > /b']) assert.ok(steps0.includes(s), s);
  const table = ok(tsbuild(['cache', 'ls'], { root: store })).stdout;
  assert.match(table, /^CACHE ID +SIZE +LAST USED +IN IMAGE +CREATED BY\n/);
  const du = JSON.parse(ok(tsbuild(['cache', 'du', '--format', 'json'], { root: store })).stdout) as {
    records: number;
    total: number;
    reclaimable: number;
  };
  assert.is(du.records, ls().length);
  // Reclaimable: only the small "echo b" layer (the 300 kB one is in kept:1).
  assert.ok(du.total > 300000 && du.reclaimable > 0 && du.reclaimable < 100000, JSON.stringify(du));

  // Used within the hour: --filter until=1h keeps everything.
  assert.match(
    ok(tsbuild(['cache', 'prune', '--filter', 'until=1h'], { root: store })).stdout,
    /^Deleted 0 cache records/,
  );
  // By default only what no tagged image has: the b record goes, the kept:1 records stay.
  ok(tsbuild(['cache', 'prune'], { root: store }));
  assert.not.ok(ls().some((e) => e.step?.includes('echo b')));
  assert.ok(ls().some((e) => e.step?.includes('echo a')));
  // --all with room for everything deletes nothing; with room for little, least recently used first.
  assert.match(ok(tsbuild(['cache', 'prune', '--all', '--keep-storage', '1g'], { root: store })).stdout, /^Deleted 0/);
  ok(tsbuild(['cache', 'prune', '--all', '--keep-storage', '0'], { root: store }));
  assert.equal(ls(), []);
  // The image is still whole (a record never owned the image's blobs), and a rebuild runs again.
  ok(tsbuild(['check'], { root: store }));
  const bad = tsbuild(['cache', 'prune', '--filter', 'size=1'], { root: store });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /unknown filter "size"/);
});

test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});
test.run();
