// The image commands through the CLI: images, tag, inspect by id, rmi, prune (which keeps what
// tags and the build cache reach, and with --all drops the cache too), save and load.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, chmodSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo data > /data\n` });
const blobs = () => readdirSync(join(root, 'blobs', 'sha256')).length;

test('images lists tags; tag adds one; inspect works by short id', () => {
  ok(tsbuild(['build', '-t', 'img:1', ctx], { root }));
  ok(tsbuild(['tag', 'img:1', 'localhost:5000/team/img:2'], { root }));
  const list = ok(tsbuild(['images'], { root })).stdout;
  assert.match(list, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/m);
  assert.match(list, /^img\s+1\s+[0-9a-f]{12}\s/m);
  assert.match(list, /^localhost:5000\/team\/img\s+2\s/m);
  const id = /^img\s+1\s+([0-9a-f]{12})/m.exec(list)![1];
  assert.is(JSON.parse(ok(tsbuild(['inspect', id], { root })).stdout).Id.slice(7, 19), id);
});

test('tag refuses a target that is no tag: exit 2 naming it, and nothing is tagged', () => {
  const digest = `sha256:${'0'.repeat(64)}`;
  const cases: Array<[string, RegExp]> = [
    // As docker: a name@digest would claim a digest the image (a local manifest) need not have.
    [
      `localhost:5000/bad/one@${digest}`,
      /localhost:5000\/bad\/one@sha256:0{64}: refusing to create a tag with a digest/,
    ],
    [
      `localhost:5000/bad/two:1@${digest}`,
      /localhost:5000\/bad\/two:1@sha256:0{64}: refusing to create a tag with a digest/,
    ],
    ['localhost:5000/Bad/three:1', /invalid reference "localhost:5000\/Bad\/three:1"/],
  ];
  for (const [target, want] of cases) {
    const r = tsbuild(['tag', Base, target], { root });
    assert.is(r.code, 2, `${target}\n${r.stderr}`);
    assert.match(r.stderr, want, target);
  }
  assert.not.match(ok(tsbuild(['images'], { root })).stdout, /bad\//i);
});

test('rmi removes tags only; prune keeps what the build cache reaches', () => {
  ok(tsbuild(['rmi', 'img:1', 'localhost:5000/team/img:2'], { root }));
  assert.is(tsbuild(['inspect', 'img:1'], { root }).code, 1);
  const before = blobs();
  ok(tsbuild(['prune', '--grace', '0'], { root }));
  const after = blobs();
  assert.ok(after < before, 'the untagged manifest and config go');
  // The RUN layer is still in the cache: a rebuild runs nothing.
  assert.match(ok(tsbuild(['build', '--progress=plain', ctx], { root })).stderr, /CACHED/);
});

test('prune --all drops the build cache and what only it reached; tagged images stay', () => {
  ok(tsbuild(['prune', '--all', '--grace', '0'], { root }));
  assert.is(ok(tsbuild(['inspect', Base], { root })).code, 0);
  assert.not.match(ok(tsbuild(['build', '--progress=plain', ctx], { root })).stderr, /CACHED/);
});

test('save and load round trip into a fresh store', () => {
  ok(tsbuild(['build', '-t', 'img:3', ctx], { root }));
  const file = join(tempDir('save'), 'img.tar');
  ok(tsbuild(['tag', 'img:3', 'localhost:5000/team/img:3b'], { root }));
  ok(tsbuild(['save', '-o', file, 'img:3', 'localhost:5000/team/img:3b'], { root }));
  const other = tempDir('store2');
  // Every tag, named as docker load names them (docker.io/library/ left out).
  const loaded = ok(tsbuild(['load', '-i', file], { root: other }))
    .stdout.split('\n')
    .filter(Boolean)
    .sort();
  assert.equal(loaded, ['Loaded image: img:3', 'Loaded image: localhost:5000/team/img:3b']);
  assert.is(
    JSON.parse(ok(tsbuild(['inspect', 'img:3'], { root: other })).stdout).Id,
    JSON.parse(ok(tsbuild(['inspect', 'img:3'], { root })).stdout).Id,
  );
  cleanup(other);
});

// docker shows an image's layers unpacked, whatever they were pulled or loaded as; a built image's layers are
// kept uncompressed, so its SIZE already is: a loaded one, its layers gzip-compressed, must show the same.
test('images and history: a loaded image with compressed layers shows their uncompressed size, as a built one', () => {
  ok(tsbuild(['build', '-t', 'img:5', ctx], { root }));
  const file = join(tempDir('save'), 'img.tar');
  ok(tsbuild(['save', '--compression', 'gzip', '-o', file, 'img:5'], { root }));
  const other = tempDir('store2');
  ok(tsbuild(['load', '-i', file], { root: other }));
  // Per layer, in bytes (the history rows of empty layers are 0 in both).
  const layers = (r: string) =>
    ok(tsbuild(['history', '--human=false', '--format', '{{.Size}}', 'img:5'], { root: r })).stdout;
  assert.is(layers(other), layers(root));
  // The image: config and layers the same; only the manifest differs (it names the compressed blobs).
  const size = (r: string) => {
    const [row] = JSON.parse(ok(tsbuild(['images', '--format', 'json', 'img:5'], { root: r })).stdout);
    return row.size - statSync(join(r, 'blobs', 'sha256', row.manifestDigest.slice(7))).size;
  };
  assert.is(size(other), size(root));
  // What the first listing worked out is remembered (a record per compressed layer): the next reads it.
  const records = readdirSync(join(other, 'cache')).filter((f) =>
    readFileSync(join(other, 'cache', f), 'utf8').includes('"kind":"unpacked-size"'),
  );
  assert.ok(records.length > 0, 'no record of an unpacked size');
  assert.is(size(other), size(root));
  cleanup(other);
});

test('images REPOSITORY[:TAG] lists only that repository (or tag), as docker images does', () => {
  for (const t of ['listme:a', 'listme:b', 'listme-not:c']) ok(tsbuild(['tag', Base, t], { root }));
  const cases: Array<[string[], string[]]> = [
    [['listme'], ['listme a', 'listme b']],
    [['listme:b'], ['listme b']],
    [['listme*'], ['listme a', 'listme b', 'listme-not c']],
    [['nothing-here'], []],
  ];
  for (const [args, want] of cases) {
    const out = ok(tsbuild(['images', ...args], { root })).stdout;
    const rows = out
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((l) => l.split(/\s+/).slice(0, 2).join(' '));
    assert.equal(rows.sort(), want, args.join(' '));
  }
  const two = tsbuild(['images', 'listme', 'listme-not'], { root });
  assert.is(two.code, 2, two.stderr);
  assert.match(two.stderr, /"tsbuild images" requires at most 1 argument/);
  ok(tsbuild(['rmi', 'listme:a', 'listme:b', 'listme-not:c'], { root }));
});

test('rmi by image id (prefix or sha256:): its one tag goes; several need -f, as docker rmi', () => {
  const own = context({ Dockerfile: `FROM ${Base}\nLABEL rmi-by-id=1\n` });
  // [tags the image has, rmi's arguments with ID for its id and SHORT for 12 hex digits, exit code, stdout, stderr]
  const cases: Array<[string[], string[], number, RegExp, RegExp]> = [
    [['byid:one'], ['SHORT'], 0, /^Untagged: byid:one\n$/, /^$/],
    [['byid:one'], ['ID'], 0, /^Untagged: byid:one\n$/, /^$/],
    [
      ['byid:one', 'byid:two'],
      ['SHORT'],
      1,
      /^$/,
      /unable to delete [0-9a-f]{12} \(must be forced\) - image is referenced in multiple repositories/,
    ],
    [['byid:one', 'byid:two'], ['-f', 'SHORT'], 0, /^Untagged: byid:one\nUntagged: byid:two\n$/, /^$/],
    [['byid:one'], ['feedfacefeed'], 1, /^$/, /No such image: feedfacefeed/],
    // docker's --no-prune (keep untagged parents) is accepted: tsbuild images have no parent images.
    [['byid:one'], ['--no-prune', 'SHORT'], 0, /^Untagged: byid:one\n$/, /^$/],
  ];
  cases.forEach(([tags, args, code, out, err], i) => {
    // An image of its own per row (an untagged image is not found by its id any more).
    ok(tsbuild(['build', '--label', `row=${i}`, ...tags.flatMap((t) => ['-t', t]), own], { root }));
    const id = ok(tsbuild(['inspect', '-f', '{{.Id}}', tags[0]], { root })).stdout.trim();
    const argv = args.map((a) => (a === 'ID' ? id : a === 'SHORT' ? id.slice(7, 19) : a));
    const r = tsbuild(['rmi', ...argv], { root });
    assert.is(r.code, code, `rmi ${argv.join(' ')}\n${r.stderr}`);
    assert.match(r.stdout, out, `rmi ${argv.join(' ')}`);
    assert.match(r.stderr, err, `rmi ${argv.join(' ')}`);
    tsbuild(['rmi', 'byid:one', 'byid:two'], { root });
  });
  cleanup(own);
});

test("image SUBCOMMAND: docker's management-command names for the image commands", () => {
  ok(tsbuild(['tag', Base, 'mgmt:1'], { root }));
  const id = ok(tsbuild(['inspect', '-f', '{{.Id}}', Base], { root })).stdout;
  // [image's arguments, the plain command's arguments]: the same exit status and output
  const same: Array<[string[], string[]]> = [
    [
      ['ls', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'],
      ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'],
    ],
    [
      ['list', '-q', 'mgmt'],
      ['images', '-q', 'mgmt'],
    ],
    [
      ['inspect', '-f', '{{.Id}}', 'mgmt:1'],
      ['inspect', '-f', '{{.Id}}', 'mgmt:1'],
    ],
    [
      ['history', '-q', 'mgmt:1'],
      ['history', '-q', 'mgmt:1'],
    ],
  ];
  for (const [args, plain] of same) {
    const a = tsbuild(['image', ...args], { root });
    const b = tsbuild(plain, { root });
    assert.is(a.code, 0, `image ${args.join(' ')}\n${a.stderr}`);
    assert.is(a.stdout, b.stdout, `image ${args.join(' ')}`);
  }
  assert.is(ok(tsbuild(['image', 'inspect', '-f', '{{.Id}}', 'mgmt:1'], { root })).stdout, id);
  ok(tsbuild(['image', 'tag', 'mgmt:1', 'mgmt:2'], { root }));
  assert.is(ok(tsbuild(['image', 'rm', 'mgmt:1', 'mgmt:2'], { root })).stdout, 'Untagged: mgmt:1\nUntagged: mgmt:2\n');
  const none = tsbuild(['image', 'frobnicate'], { root });
  assert.is(none.code, 2, none.stderr);
  assert.match(none.stderr, /^ERROR: "tsbuild image" needs a subcommand: ls, .*rm/m);
});

test('images lists the newest first, as docker images does (not by name)', () => {
  // A RUN step of each its own (a build arg): its time is SOURCE_DATE_EPOCH, not a cached step's.
  const own = context({ Dockerfile: `FROM ${Base}\nARG T\nRUN echo $T > /t\n` });
  // [tag, SOURCE_DATE_EPOCH (the image's created time)]: the name order is not the time order.
  const built: Array<[string, string]> = [
    ['order:a', '1000000000'],
    ['order:c', '1000000200'],
    ['order:b', '1000000100'],
  ];
  for (const [tag, epoch] of built)
    ok(tsbuild(['build', '-t', tag, '--build-arg', `T=${tag}`, own], { root, env: { SOURCE_DATE_EPOCH: epoch } }));
  const list = ok(tsbuild(['images', '--format', '{{.Repository}}:{{.Tag}}', 'order'], { root })).stdout;
  assert.is(list, 'order:c\norder:b\norder:a\n');
  ok(tsbuild(['rmi', 'order:a', 'order:b', 'order:c'], { root }));
  cleanup(own);
});

test("rmi by id matches the image id (config digest) only, not the manifest's digest: docker's No such image", () => {
  const own = context({ Dockerfile: `FROM ${Base}\nLABEL rmi-by-manifest=1\n` });
  ok(tsbuild(['build', '-q', '-t', 'bymanifest:1', own], { root }));
  const index = JSON.parse(readFileSync(join(root, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const manifest = index.manifests.find((m) =>
    m.annotations?.['io.containerd.image.name']?.includes('bymanifest:1'),
  )!.digest;
  // [rmi's argument]: each names the manifest, not the image; the tag stays.
  const rows: string[] = [manifest.slice(7, 19), `sha256:${manifest.slice(7, 19)}`, manifest];
  for (const arg of rows) {
    const r = tsbuild(['rmi', arg], { root });
    assert.is(r.code, 1, `rmi ${arg}\n${r.stdout}`);
    assert.match(r.stderr, `No such image: ${arg}`, `rmi ${arg}`);
    ok(tsbuild(['inspect', 'bymanifest:1'], { root }));
  }
  ok(tsbuild(['rmi', 'bymanifest:1'], { root }));
  cleanup(own);
});

test("rmi of the last tag of an image a container uses is refused without -f, as docker's conflict", () => {
  const own = context({ Dockerfile: `FROM ${Base}\nLABEL in-use=1\n` });
  ok(tsbuild(['build', '-q', '-t', 'inuse:1', '-t', 'inuse:2', own], { root }));
  const id = ok(tsbuild(['inspect', '-f', '{{.Id}}', 'inuse:1'], { root }))
    .stdout.trim()
    .slice(7, 19);
  ok(tsbuild(['run', '--name', 'rmi-in-use', 'inuse:1', 'true'], { root }));
  // This container's id by its name: `ps -a` lists every container of the shared store.
  const cid = ok(tsbuild(['inspect', '--type', 'container', '-f', '{{.Id}}', 'rmi-in-use'], { root }))
    .stdout.trim()
    .slice(0, 12);
  // [rmi's arguments, exit code, stdout, stderr], in this order
  const cases: Array<[string[], number, RegExp, RegExp]> = [
    // Not the last tag: it goes.
    [['inuse:2'], 0, /^Untagged: inuse:2\n$/, /^$/],
    [
      ['inuse:1'],
      1,
      /^$/,
      new RegExp(
        `unable to remove repository reference "inuse:1" \\(must force\\) - container ${cid} is using its ` +
          `referenced image ${id}`,
      ),
    ],
    [
      [id],
      1,
      /^$/,
      new RegExp(`unable to delete ${id} \\(must be forced\\) - image is being used by stopped container`),
    ],
    [['-f', 'inuse:1'], 0, /^Untagged: inuse:1\n$/, /^$/],
  ];
  for (const [args, code, out, err] of cases) {
    const r = tsbuild(['rmi', ...args], { root });
    assert.is(r.code, code, `rmi ${args.join(' ')}\n${r.stderr}`);
    assert.match(r.stdout, out, `rmi ${args.join(' ')}`);
    assert.match(r.stderr, err, `rmi ${args.join(' ')}`);
  }
  ok(tsbuild(['rm', 'rmi-in-use'], { root }));
  cleanup(own);
});

test('images -a / --all (docker images -a) lists what images lists: a build leaves no intermediate images', () => {
  const plain = ok(tsbuild(['images', '-q'], { root })).stdout;
  assert.ok(plain.length > 0);
  for (const flag of ['-a', '--all', '-aq']) {
    const args = flag === '-aq' ? ['images', flag] : ['images', flag, '-q'];
    assert.is(ok(tsbuild(args, { root })).stdout, plain, flag);
  }
});

test(
  'check: a clean store passes; a missing layer and a corrupt blob are found, images shows BROKEN, --repair ' +
    'drops them',
  () => {
    ok(tsbuild(['build', '-t', 'img:4', ctx], { root }));
    assert.match(ok(tsbuild(['check'], { root })).stdout, /: no problems$/m);
    const layers = (JSON.parse(ok(tsbuild(['inspect', 'img:4'], { root })).stdout).Layers as { digest: string }[]).map(
      (l) => l.digest,
    );
    const top = layers[layers.length - 1];
    const blob = (d: string) => join(root, 'blobs', 'sha256', d.slice(7));
    rmSync(blob(top));
    const base = layers[0];
    chmodSync(blob(base), 0o644);
    appendFileSync(blob(base), 'tampered');

    const images = ok(tsbuild(['images'], { root }));
    assert.match(images.stdout, /^img\s+4\s+[0-9a-f]{12}\s.*BROKEN$/m);
    assert.ok(images.stderr.includes(`img:4 is broken: blob ${top} is missing`), images.stderr);
    const r = tsbuild(['check'], { root });
    assert.is(r.code, 1, r.stdout);
    assert.ok(r.stdout.includes(`problem: tag docker.io/library/img:4: blob ${top} is missing`), r.stdout);
    assert.match(r.stdout, new RegExp(`problem: blob ${base} is corrupt: its content hashes to sha256:[0-9a-f]{64}`));
    assert.match(
      tsbuild(['run', '--rm', 'img:4', 'true'], { root }).stderr,
      /broken: blob sha256:[0-9a-f]{64} missing/,
    );

    const fixed = ok(tsbuild(['check', '--repair'], { root }));
    assert.match(fixed.stdout, /repaired: removed tag docker.io\/library\/img:4/);
    assert.match(fixed.stdout, new RegExp(`repaired: removed corrupt blob ${base}`));
    // The base image lost a layer too: its tag is dropped as well; what is left is clean.
    assert.match(ok(tsbuild(['check'], { root })).stdout, /: no problems$/m);
    assert.not.match(ok(tsbuild(['images'], { root })).stdout, /img\s+4/);
  },
);

test('bad usage exits 2', () => {
  assert.is(tsbuild(['tag', 'only-one'], { root }).code, 2);
  assert.is(tsbuild(['check', 'extra'], { root }).code, 2);
  assert.is(tsbuild(['prune', '--grace', 'soon'], { root }).code, 2);
  assert.is(tsbuild(['save'], { root }).code, 2);
});

test("image prune [-a] [-f] untags what no container uses, as docker's; asks first without -f", () => {
  const store = storeWithBase(tempDir('store-image-prune'));
  const own = context({ Dockerfile: `FROM ${Base}\nLABEL unused=1\n` });
  ok(tsbuild(['build', '-q', '-t', 'unused:1', '-t', 'unused:2', own], { root: store }));
  ok(tsbuild(['tag', Base, 'used:1'], { root: store }));
  ok(tsbuild(['run', '--name', 'prune-in-use', Base, 'true'], { root: store }));
  const tags = () =>
    ok(tsbuild(['images', '--format', '{{.Repository}}:{{.Tag}}'], { root: store }))
      .stdout.split('\n')
      .filter(Boolean)
      .sort();
  const before = tags();
  const ask = 'WARNING! This will remove all images without at least one container associated to them.\n';
  const prompt = 'Are you sure you want to continue? [y/N] ';
  // [image prune's arguments, stdin, stdout, the tags left], in this order on one store
  const cases: Array<[string[], string, RegExp, string[]]> = [
    // Without -f it asks, TTY or not: no answer (EOF) or "n" leaves everything, exit 0.
    [['-a'], '', new RegExp(`^${esc(ask + prompt)}$`), before],
    [['-a'], 'n\n', new RegExp(`^${esc(ask + prompt)}$`), before],
    // Without -a only dangling images go; the store keeps none (an image is kept by its tags).
    [['-f'], '', /^Total reclaimed space: .*\n$/, before],
    [
      ['-a'],
      'y\n',
      new RegExp(`^${esc(ask + prompt)}Deleted Images:\nuntagged: unused:1\nuntagged: unused:2\ndeleted: sha256:`),
      before.filter((t) => !t.startsWith('unused:')),
    ],
    // The image a stopped container was made from stays, with every tag.
    [['-a', '-f'], '', /^Total reclaimed space: .*\n$/, before.filter((t) => !t.startsWith('unused:'))],
  ];
  for (const [args, input, out, left] of cases) {
    const r = tsbuild(['image', 'prune', ...args], { root: store, input });
    assert.is(r.code, 0, `image prune ${args.join(' ')}\n${r.stderr}`);
    assert.match(r.stdout, out, `image prune ${args.join(' ')} <<< ${JSON.stringify(input)}`);
    assert.equal(tags(), left, `image prune ${args.join(' ')} <<< ${JSON.stringify(input)}`);
  }
  assert.ok(before.includes('used:1') && before.some((t) => t.startsWith('unused:')), before.join(' '));
  ok(tsbuild(['rm', 'prune-in-use'], { root: store }));
  cleanup(own, store);
});

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test.after(() => cleanup(root, ctx));
test.run();
