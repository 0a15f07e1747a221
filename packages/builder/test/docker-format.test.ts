// The --format template engine and the docker-shaped views of an image, against what docker printed for
// the same image (fixtures/docker-format: docker's outputs recorded as the oracle, the docker version in
// each file). The image is tsbuild's build of fixtures/docker-format's Dockerfile-like steps, loaded into
// a private dockerd with `docker load`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Image } from '@tsbuild/layerstore';
import { goString, nilList, nilMap, parseTemplate, render } from '../src/cli/template.js';
import {
  ellipsis,
  globMatch,
  historyRows,
  inspectDocument,
  matchesFilter,
  parseImageFilters,
  type ImageSummary,
} from '../src/cli/imageviews.js';

// Compiled to dist/test/: the fixtures stay in the source tree.
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'docker-format');
const read = (f: string) => JSON.parse(readFileSync(join(fixtures, f), 'utf8'));
const img = read('image.json') as Image;
const inspectOracle = read('docker-inspect.json') as {
  inspect: { template: string; stdout: string; stderr: string; exit: number }[];
};
const listings = read('docker-listings.json') as {
  history: { json: string; noTrunc: string; default: string; quiet: string };
  images: { filters: string[]; exit: number; stderr: string; listed: string[] }[];
};

const summary = (repository: string, tag: string, image: Image): ImageSummary & { image: Image } => ({
  reference: `${repository}:${tag}`,
  repository,
  tag,
  id: image.configDigest,
  manifestDigest: image.manifestDigest,
  created: image.config.created,
  size: 0,
  image,
});
// The tags in docker's order (the order they were made).
const tags = ['demo:1', 'other:1', 'localhost:5000/team/demo:2'].map((r) => {
  const i = r.lastIndexOf(':');
  return summary(r.slice(0, i), r.slice(i + 1), img);
});

// Where tsbuild differs from docker on purpose, by template (docs/cli.md says so too).
const differs: Record<string, string> = {
  '{{.Size}}': 'bytes as stored (compressed layers), not the unpacked size docker computes',
  '{{.RepoDigests}}': 'tsbuild lists REPO@manifest-digest per repository; docker only after a pull or push',
  '{{json .}}': 'the whole document: Size, RepoDigests and docker-only fields (GraphDriver, Metadata) differ',
  '{{.Metadata}}': 'docker-daemon-only field',
  '{{.GraphDriver.Name}}': 'docker-daemon-only field',
  '{{.ContainerConfig}}': 'docker-daemon-only field',
};

const doc = inspectDocument(img, tags);
for (const c of inspectOracle.inspect) {
  if (differs[c.template]) continue;
  test(`inspect --format ${JSON.stringify(c.template)} prints what docker printed`, () => {
    let out: string;
    try {
      out = render(parseTemplate(c.template), doc) + '\n';
    } catch (e) {
      assert.ok(c.exit !== 0, `docker printed ${JSON.stringify(c.stdout)}, tsbuild failed: ${(e as Error).message}`);
      assert.is((e as Error).message, c.stderr.trim());
      return;
    }
    assert.is(c.exit, 0, `docker failed (${c.stderr.trim()}), tsbuild printed ${JSON.stringify(out)}`);
    assert.is(out, c.stdout);
  });
}

test('the templates docker differs on are still answered, each as documented', () => {
  assert.is(render(parseTemplate('{{.Size}}'), doc), String(img.layers.reduce((n, l) => n + l.size, 0)));
  assert.is(
    render(parseTemplate('{{.RepoDigests}}'), doc),
    `[demo@${img.manifestDigest} other@${img.manifestDigest} localhost:5000/team/demo@${img.manifestDigest}]`,
  );
  assert.throws(() => render(parseTemplate('{{.Metadata}}'), doc), /map has no entry for key "Metadata"/);
});

// Go's printing of values, and the parts of text/template scripts lean on, beyond what docker was asked.
const goCases: [string, unknown, string][] = [
  ['{{.}}', ['a', 'b'], '[a b]'],
  ['{{.}}', { b: 1, a: 'x' }, 'map[a:x b:1]'],
  ['{{.}}', [], '[]'],
  ['{{.}}', null, '<nil>'],
  ['{{.}}', { a: [1, { c: true }] }, 'map[a:[1 map[c:true]]]'],
  ['{{if eq .os "linux"}}L{{else if eq .os "windows"}}W{{else}}?{{end}}', { os: 'windows' }, 'W'],
  ['{{with .x}}{{.}}{{else}}none{{end}}', { x: '' }, 'none'],
  ['{{range .}}{{.}}{{else}}empty{{end}}', [], 'empty'],
  ['{{$n := len .}}{{$n}} items', [1, 2, 3], '3 items'],
  ['{{range $k, $v := .}}{{$k}}{{$v}}{{end}}', { z: 1, a: 2 }, 'a2z1'],
  ['{{.a | len}}', { a: 'abcd' }, '4'],
  ['{{printf "%s=%d %q" .k .v .k}}', { k: 'n', v: 5 }, 'n=5 "n"'],
  ['{{(index . 1).name}}', [{ name: 'x' }, { name: 'y' }], 'y'],
  ['a  {{- " b " -}}  c', {}, 'a b c'],
  ['{{json .}}', { s: '<&>' }, '{"s":"\\u003c\\u0026\\u003e"}'],
  ['{{join (split .p ":") ","}}', { p: 'a:b:c' }, 'a,b,c'],
  ['{{lower .x}} {{upper .x}} {{title "ab cd"}}', { x: 'Ab' }, 'ab AB Ab Cd'],
  ['{{and 1 0}} {{or 0 "x"}} {{not true}}', {}, '0 x false'],
  ['{{`raw {{x}}`}}', {}, 'raw {{x}}'],
  ['{{$.a}}{{range .b}}{{$.a}}{{.}}{{end}}', { a: '-', b: [1, 2] }, '--1-2'],
  ['{{index .m "k"}}|', { m: nilMap }, '|'],
  ['{{.l}} {{.m}} {{json .l}}', { l: nilList, m: nilMap }, '[] map[] null'],
];
for (const [t, data, want] of goCases) {
  test(`template ${t} on ${JSON.stringify(data)}`, () => assert.is(render(parseTemplate(t), data), want));
}

const badTemplates: [string, RegExp][] = [
  ['{{.Id', /template: :1: unclosed action/],
  ['{{if .a}}x', /unexpected EOF/],
  ['{{end}}', /unexpected \{\{end\}\}/],
  ['{{nosuch .a}}', /function "nosuch" not defined/],
  ['{{template "x"}}', /not supported/],
];
for (const [t, data, re] of [
  ['{{range .}}x{{end}}', 1e12, /range can't iterate over 1000000000000/],
  ['{{.a.b}}', { a: 'text' }, /can't evaluate field b in type string/],
  ['{{index . 5}}', [1], /index out of range: 5/],
] as [string, unknown, RegExp][]) {
  test(`template ${t} fails when run, naming why`, () => assert.throws(() => render(parseTemplate(t), data), re));
}
for (const [t, re] of badTemplates) {
  test(`template ${t} is refused when parsed`, () => assert.throws(() => parseTemplate(t), re));
}

test('goString prints nested values as Go does', () => {
  assert.is(goString({ 'k:1': ['a b'] }), 'map[k:1:[a b]]');
});

// history: docker's rows for the same image (sizes aside: tsbuild's are the stored, compressed layers).
test('history --format json: the rows docker printed, sizes and ages aside', () => {
  const ours = historyRows(img, { noTrunc: false });
  const theirs = listings.history.json
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, string>);
  assert.is(ours.length, theirs.length);
  for (const [i, t] of theirs.entries()) {
    const o = ours[i] as unknown as Record<string, string>;
    for (const k of ['Comment', 'CreatedAt', 'CreatedBy', 'ID']) assert.is(o[k], t[k], `row ${i} ${k}`);
    // A step without a layer is 0B in both; a layer's size is its stored (compressed) bytes here.
    if (o.Size === '0B') assert.is(t.Size, '0B', `row ${i}: no layer, no size`);
  }
});

test('history --no-trunc: the full CREATED BY and image id docker printed', () => {
  const ours = historyRows(img, { noTrunc: true });
  const lines = listings.history.noTrunc.trim().split('\n').slice(1);
  for (const [i, line] of lines.entries()) {
    assert.ok(line.startsWith(ours[i].ID), `row ${i}: ${line}`);
    assert.ok(line.includes(`   ${ours[i].CreatedBy}   `), `row ${i}: ${line}`);
  }
  assert.is(ellipsis('abcdef', 4), 'abc…');
  assert.is(ellipsis('abc', 4), 'abc');
});

// images --filter: docker's answers for the same tags. docker also had a dangling (untagged) image;
// tsbuild lists tags only, so it never has one: docker's <none>:<none> row is left out of its answers.
test('images --filter: the rows docker listed', () => {
  const other = JSON.parse(JSON.stringify(img)) as Image;
  const rows = [...tags, summary('tsbuild/busybox', '1', { ...other, config: { ...other.config, config: {} } })];
  for (const c of listings.images) {
    if (c.exit !== 0) {
      assert.throws(() => parseImageFilters(c.filters), /invalid filter/, c.filters.join(' '));
      continue;
    }
    const f = parseImageFilters(c.filters);
    const listed = rows.filter((r) => matchesFilter(r, f)).map((r) => `${r.repository}:${r.tag}`);
    const want = c.listed.filter((l) => l !== '<none>:<none>');
    assert.equal(listed.sort(), want.sort(), c.filters.join(' '));
  }
});

const globs: [string, string, boolean][] = [
  ['demo', 'demo', true],
  ['de*', 'demo', true],
  ['*', 'team/demo', false],
  ['*/*', 'team/demo', true],
  ['d?mo', 'demo', true],
  ['[a-d]emo', 'demo', true],
  ['[^d]emo', 'demo', false],
  ['demo\\*', 'demo*', true],
];
for (const [p, name, want] of globs) {
  test(`reference pattern ${p} ${want ? 'matches' : 'does not match'} ${name}`, () =>
    assert.is(globMatch(p, name), want));
}

test.run();
