// The image commands as scripts call them, through the CLI: history (docker's columns, --no-trunc,
// --format json), inspect --format and its docker-shaped JSON, images --filter and --format. The last test
// loads the same images into a private dockerd and compares docker's answers with tsbuild's; docker's
// recorded answers for more templates are in packages/builder/test/docker-format.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { skip, startDockerd } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const long = 'a-very-long-command-line-that-docker-truncates-in-its-history-listing-by-default';
const ctx = context({
  Dockerfile:
    `FROM ${Base}\nLABEL org.opencontainers.image.title="demo app" team=ci\nENV A=1 B="two words"\n` +
    `RUN echo hello > /hello && echo ${long} > /long\nWORKDIR /app\nCMD ["sh", "-c", "echo hi"]\n`,
});
const web = context({ Dockerfile: `FROM ${Base}\nLABEL team=web\nRUN echo web > /web\n` });
const t = (args: string[]) => tsbuild(args, { root });

test.before(() => {
  ok(t(['build', '-q', '-t', 'demo:1', ctx]));
  ok(t(['tag', 'demo:1', 'localhost:5000/team/demo:2']));
  ok(t(['build', '-q', '-t', 'web:1', web]));
});
test.after(() => cleanup(root, ctx, web));

test('history: docker columns, newest first, the long command cut at 45 characters', () => {
  const out = ok(t(['history', 'demo:1'])).stdout;
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0], /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  const id = JSON.parse(ok(t(['inspect', 'demo:1'])).stdout).Id.slice(7, 19);
  assert.match(
    lines[1],
    new RegExp(`^${id}\\s+.* ago\\s+CMD \\["sh" "-c" "echo hi"\\]\\s+0B\\s+buildkit.dockerfile.v0$`),
  );
  // The layer's size is its plain tar's (docker shows uncompressed sizes too): whole 512-byte tar blocks.
  assert.match(out, /^<missing>\s+.*RUN \/bin\/sh -c echo hello > \/hello && echo a…\s+[\d.]+k?B\s+buildkit/m);
  assert.match(lines.at(-1)!, /^<missing>\s+.*ADD rootfs.tar \/ # buildkit\s+\d/);
  const noTrunc = ok(t(['history', '--no-trunc', 'demo:1'])).stdout;
  assert.ok(noTrunc.includes(`echo ${long} > /long # buildkit`), noTrunc);
  assert.match(noTrunc, /^sha256:[0-9a-f]{64}\s/m);
});

test('history: ONBUILD has no entry (BuildKit writes none for it)', () => {
  const c = context({ Dockerfile: `FROM ${Base}\nONBUILD RUN echo child\nLABEL x=1\n` });
  ok(t(['build', '-q', '-t', 'onbuild-history:1', c]));
  const rows = ok(t(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'onbuild-history:1'])).stdout;
  assert.equal(rows.split('\n').slice(0, 2), ['LABEL x=1', 'CMD ["sh"]']);
  cleanup(c);
});

test('history --format json: one object per line with docker keys; templates and -q', () => {
  const rows = ok(t(['history', '--format', 'json', 'demo:1']))
    .stdout.trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(Object.keys(rows[0]), ['Comment', 'CreatedAt', 'CreatedBy', 'CreatedSince', 'ID', 'Size']);
  assert.is(rows[1].ID, '<missing>');
  assert.is(rows.at(-1).CreatedBy, 'ADD rootfs.tar / # buildkit');
  const lines = ok(t(['history', '--format', '{{.CreatedBy}}|{{.Comment}}', 'demo:1'])).stdout.split('\n');
  // BuildKit's text for CMD: Go's %q of the list.
  assert.is(lines[0], 'CMD ["sh" "-c" "echo hi"]|buildkit.dockerfile.v0');
  const table = ok(t(['history', '--format', 'table {{.ID}}\t{{.CreatedBy}}', 'demo:1'])).stdout;
  assert.match(table, /^IMAGE\s+CREATED BY\n[0-9a-f]{12}\s+CMD/);
  assert.match(ok(t(['history', '-q', 'demo:1'])).stdout, /^[0-9a-f]{12}\n<missing>\n/);
  const raw = ok(t(['history', '--human=false', '--format', '{{.CreatedSince}} {{.Size}}', 'demo:1'])).stdout;
  assert.match(raw.split('\n').at(-2)!, /^\d{4}-\d\d-\d\dT[\d:.]+Z \d+$/, 'RFC 3339 dates and sizes in bytes');
});

test('inspect --format: fields, index, json, range, maps and slices as docker prints them', () => {
  const cases: [string, string | RegExp][] = [
    ['{{.Id}}', /^sha256:[0-9a-f]{64}\n$/],
    ['{{.Config.Env}}', '[PATH=/usr/sbin:/usr/bin:/sbin:/bin A=1 B=two words]\n'],
    ['{{index .Config.Labels "team"}}', 'ci\n'],
    ['{{json .Config.Labels}}', '{"org.opencontainers.image.title":"demo app","team":"ci"}\n'],
    ['{{.Config.Labels}}', 'map[org.opencontainers.image.title:demo app team:ci]\n'],
    ['{{range .Config.Env}}{{.}},{{end}}', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin,A=1,B=two words,\n'],
    ['{{.Os}}/{{.Architecture}}', 'linux/amd64\n'],
    ['{{.RepoTags}}', '[demo:1 localhost:5000/team/demo:2]\n'],
    ['{{.Config.Entrypoint}} {{json .Config.Entrypoint}}', '[] null\n'],
    // ArgsEscaped: BuildKit sets it with every CMD (busybox's base has one too).
    [
      '{{json .Config}}',
      /^\{"Env":\[.*\],"Cmd":\["sh","-c","echo hi"\],"WorkingDir":"\/app","Labels":\{.*\},"ArgsEscaped":true\}\n$/,
    ],
    ['{{len .RootFS.Layers}}', '3\n'],
  ];
  for (const [format, want] of cases) {
    const out = ok(t(['inspect', '--format', format, 'demo:1'])).stdout;
    if (typeof want === 'string') assert.is(out, want, format);
    else assert.match(out, want, format);
  }
  // One line per reference.
  assert.match(ok(t(['inspect', '-f', '{{.Os}}', 'demo:1', 'web:1'])).stdout, /^linux\nlinux\n$/);
  // A reference that names nothing is reported; the others are still shown; exit 1.
  const partial = t(['inspect', '-f', '{{.Os}}', 'demo:1', 'nosuch:1', 'web:1']);
  assert.is(partial.code, 1);
  assert.is(partial.stdout, 'linux\nlinux\n');
  assert.is(partial.stderr, 'ERROR: No such image: nosuch:1\n');
});

test('inspect: docker-shaped JSON, and what tsbuild printed before', () => {
  const doc = JSON.parse(ok(t(['inspect', 'demo:1'])).stdout);
  for (const k of ['Id', 'RepoTags', 'RepoDigests', 'Created', 'Config', 'RootFS', 'Architecture', 'Os', 'Size'])
    assert.ok(k in doc, k);
  assert.is(doc.Config.WorkingDir, '/app');
  assert.not.ok('User' in doc.Config, 'empty fields are left out, as docker does');
  assert.equal(doc.RootFS.Layers, doc.ImageConfig.rootfs.diff_ids);
  assert.is(doc.ManifestDigest, doc.RepoDigests[0].split('@')[1]);
  assert.is(doc.Layers.length, doc.Manifest.layers.length);
  assert.match(doc.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
});

test('inspect --format: a bad template or a missing field fails with a clear error, exit 2', () => {
  const unclosed = t(['inspect', '--format', '{{.Id', 'demo:1']);
  assert.is(unclosed.code, 2);
  assert.is(unclosed.stderr, 'ERROR: template parsing error: template: :1: unclosed action\n');
  const missing = t(['inspect', '--format', '{{.Config.Nope}}', 'demo:1']);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /^ERROR: .*at <\.Config\.Nope>: map has no entry for key "Nope"\n$/);
  assert.is(missing.stdout, '');
});

test('images --filter: reference patterns ORed, labels and keys ANDed, dangling', () => {
  const names = (...filters: string[]) =>
    ok(t(['images', ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.Repository}}:{{.Tag}}']))
      .stdout.split('\n')
      .filter(Boolean)
      .sort();
  assert.equal(names('reference=demo'), ['demo:1']);
  assert.equal(names('reference=*/team/*'), ['localhost:5000/team/demo:2']);
  assert.equal(names('reference=demo', 'reference=web'), ['demo:1', 'web:1']);
  assert.equal(names('label=team=ci'), ['demo:1', 'localhost:5000/team/demo:2']);
  assert.equal(names('label=team'), ['demo:1', 'localhost:5000/team/demo:2', 'web:1']);
  assert.equal(names('reference=web', 'label=team=ci'), []);
  assert.equal(names('dangling=true'), []);
  assert.equal(names('dangling=false', 'reference=web'), ['web:1']);
  const table = ok(t(['images', '--filter', 'reference=web', '--format', 'table {{.Repository}}\t{{.Tag}}'])).stdout;
  assert.is(table, 'REPOSITORY   TAG\nweb          1\n');
  const json = ok(t(['images', '--filter', 'reference=web', '--format', '{{json .}}'])).stdout;
  assert.equal(Object.keys(JSON.parse(json)).slice(0, 3), ['Containers', 'CreatedAt', 'CreatedSince']);
  const arr = JSON.parse(ok(t(['images', '--filter', 'reference=web', '--format', 'json'])).stdout);
  assert.is(arr.length, 1, 'the documented JSON array, filtered');
  assert.is(arr[0].repository, 'web');
});

test('images --filter: an unknown key or a bad value names the flag, exit 2', () => {
  const cases: [string, RegExp][] = [
    ['bogus=1', /^ERROR: --filter: invalid filter 'bogus'/],
    ['dangling=maybe', /^ERROR: --filter: invalid filter 'dangling=\[maybe\]'/],
    ['before=demo:1', /^ERROR: --filter before: not supported/],
    ['reference', /^ERROR: --filter "reference": expected KEY=VALUE/],
  ];
  for (const [f, re] of cases) {
    const r = t(['images', '--filter', f]);
    assert.is(r.code, 2, f);
    assert.match(r.stderr, re, f);
  }
});

test('docker answers the same for the same images (a private dockerd, docker load)', async () => {
  const dir = tempDir('dockerd');
  const d = await startDockerd(dir).catch((e: Error) => {
    cleanup(dir);
    throw e;
  });
  if (typeof d === 'string') {
    cleanup(dir);
    return skip(`no private dockerd to compare with: ${d}`);
  }
  try {
    const tar = join(dir, 'images.tar');
    ok(t(['save', '-o', tar, 'demo:1', 'localhost:5000/team/demo:2', 'web:1', Base]));
    const loaded = d.docker(['load', '-i', tar]);
    assert.is(loaded.code, 0, loaded.stderr);
    const same = (args: string[], what: string) => {
      const theirs = d.docker(args);
      assert.is(theirs.code, 0, `docker ${args.join(' ')}: ${theirs.stderr}`);
      assert.is(ok(t(args)).stdout, theirs.stdout, what);
    };
    // Templates whose answer does not depend on sizes or on the docker client's version.
    for (const f of [
      '{{.Id}}',
      '{{.Config.Env}}',
      '{{index .Config.Labels "team"}}',
      '{{json .Config.Labels}}',
      '{{.Config.Labels}}',
      '{{range .Config.Env}}{{.}};{{end}}',
      '{{.Os}}/{{.Architecture}}',
      '{{.Config.Cmd}} {{.Config.Entrypoint}} {{json .Config.Entrypoint}} {{.Config.WorkingDir}}',
      '{{json .RootFS}} {{len .RootFS.Layers}}',
      '{{.Created}} {{.Comment}} {{.Author}}',
      '{{if .Config.Entrypoint}}e{{else}}no e{{end}} {{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}',
    ])
      same(['inspect', '--format', f, 'demo:1'], `inspect --format ${f}`);
    same(['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Comment}}', 'demo:1'], 'history rows');
    same(['history', '--format', '{{.CreatedBy}}', 'demo:1'], 'history: CREATED BY cut as docker cuts it');
    for (const filters of [
      ['reference=demo'],
      ['reference=*/team/*'],
      ['label=team'],
      ['reference=web', 'label=team=web'],
    ]) {
      const args = [
        'images',
        ...filters.flatMap((f) => ['--filter', f]),
        '--format',
        '{{.Repository}}:{{.Tag}} {{.ID}}',
      ];
      const sorted = (out: string) => out.split('\n').filter(Boolean).sort();
      const theirs = d.docker(args);
      assert.is(theirs.code, 0, theirs.stderr);
      assert.equal(sorted(ok(t(args)).stdout), sorted(theirs.stdout), filters.join(' '));
    }
  } finally {
    await d.stop();
    cleanup(dir);
  }
});

test.run();
