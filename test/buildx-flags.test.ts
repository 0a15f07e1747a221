// The `docker buildx build` flags CI wrappers pass, through the CLI: --label, --add-host, --ulimit,
// --shm-size, --metadata-file (without a registry; see buildx-registry.test.ts for the rest), and every
// buildx flag tsbuild does not implement refused by name with exit 2, never a usage dump.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
import { inspect } from './helpers/image.js';
import { steps } from './helpers/progress.js';

const dirs: string[] = [];
const temp = (prefix: string) => {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
};
let root: string;

test.before(() => {
  root = storeWithBase(temp('store'));
});
test.after(() => cleanup(...dirs));

// buildx's build flags (and the docker build flags it keeps, hidden) that tsbuild does not implement.
const refused: [string[], string][] = [
  [['--attest', 'type=sbom'], '--attest'],
  [['--provenance', 'mode=max'], '--provenance'],
  [['--provenance=false'], '--provenance'],
  [['--sbom', 'true'], '--sbom'],
  [['--builder', 'b'], '--builder'],
  [['--call', 'outline'], '--call'],
  [['--cgroup-parent', '/x'], '--cgroup-parent'],
  [['--detach'], '--detach'],
  [['--memory', '1g'], '--memory'],
  [['-m', '1g'], '-m (--memory)'],
  [['--memory-swap', '1g'], '--memory-swap'],
  [['-c', '512'], '-c (--cpu-shares)'],
  [['--cpu-shares', '512'], '--cpu-shares'],
  [['--cpu-period', '100000'], '--cpu-period'],
  [['--cpu-quota', '50000'], '--cpu-quota'],
  [['--cpuset-cpus', '0'], '--cpuset-cpus'],
  [['--cpuset-mems', '0'], '--cpuset-mems'],
  [['--security-opt', 'seccomp=unconfined'], '--security-opt'],
  [['--isolation', 'default'], '--isolation'],
  [['--squash'], '--squash'],
];

test('every buildx flag tsbuild does not implement: exit 2, the flag named as not supported, no usage', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\n` });
  dirs.push(ctx);
  for (const [args, shown] of refused) {
    const r = tsbuild(['build', ...args, ctx], { root });
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.is(lines.length, 1, `${args.join(' ')}: one line, no usage dump:\n${r.stderr}`);
    assert.ok(lines[0]!.startsWith(`ERROR: ${shown}: not supported by tsbuild (`), `${args.join(' ')}: ${r.stderr}`);
  }
  // The same through bare `tsbuild [OPTIONS] PATH`, and listed by --help.
  const bare = tsbuild(['--squash', ctx], { root });
  assert.is(bare.code, 2, bare.stderr);
  assert.match(bare.stderr, /^ERROR: --squash: not supported by tsbuild/);
  const help = ok(tsbuild(['build', '--help'])).stdout;
  const section = help.slice(help.indexOf('Not supported'));
  for (const [, shown] of refused) assert.match(section, shown.replace(/^-\w \(/, '').replace(/\)$/, ''));
});

test('--rm, --force-rm, --compress: accepted (buildx ignores them too) and the build is the same image', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY a /a\n`, a: 'a' });
  dirs.push(ctx);
  const plain = ok(tsbuild(['build', '-q', ctx], { root })).stdout.trim();
  const flagged = ok(tsbuild(['build', '-q', '--rm', '--force-rm', '--compress', ctx], { root })).stdout.trim();
  assert.is(flagged, plain);
});

test('--label: over the Dockerfile LABELs (as BuildKit), K alone is an empty value; a bad one exits 2', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nLABEL a=dockerfile b=kept\n` });
  dirs.push(ctx);
  ok(tsbuild(['build', '-q', '-t', 'labels:1', '--label', 'a=flag', '--label', 'c=3', '--label', 'd', ctx], { root }));
  assert.equal(inspect(root, 'labels:1').Config.config.Labels, { a: 'flag', b: 'kept', c: '3', d: '' });
  const bad = tsbuild(['build', '--label', '=x', ctx], { root });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^ERROR: --label "=x": missing name$/m);
});

/** Builds ctx with args, the image's /out exported to a directory; returns that directory. */
function runOut(ctx: string, args: string[]): { out: string; stderr: string } {
  const out = temp('out');
  const r = ok(tsbuild(['build', '--progress=plain', ...args, '-o', `type=local,dest=${out}`, ctx], { root }));
  return { out, stderr: r.stderr };
}

const probe = context({
  Dockerfile:
    `FROM ${Base}\n` +
    'RUN mkdir /out && cat /etc/hosts > /out/hosts && ulimit -Sn > /out/nofile && ulimit -Hn >> /out/nofile && ' +
    "df -k /dev/shm | awk 'NR==2 {print $2}' > /out/shm\n",
});
dirs.push(probe);
const read = (out: string, f: string) => readFileSync(join(out, 'out', f), 'utf8');

test('--add-host HOST:IP (repeatable): appended to /etc/hosts of RUN steps, as BuildKit does', () => {
  const { out } = runOut(probe, ['--add-host', 'db.internal:10.1.2.3', '--add-host', 'v6host=fd00::1']);
  const lines = read(out, 'hosts').trim().split('\n');
  assert.equal(lines.slice(-2), ['10.1.2.3\tdb.internal', 'fd00::1\tv6host']);
  assert.ok(lines[0]!.startsWith('127.0.0.1\tlocalhost'), lines.join('\n'));
  // host-gateway: an address of this host, which the step can reach.
  const gw = runOut(probe, ['--add-host', 'host.docker.internal:host-gateway']).out;
  const entry = read(gw, 'hosts').trim().split('\n').at(-1)!;
  assert.match(entry, /^\d+\.\d+\.\d+\.\d+\thost\.docker\.internal$/);
  assert.not.match(entry, /^127\./);
  for (const bad of ['nohost', 'h:not-an-ip', ':1.2.3.4', 'bad host:1.2.3.4']) {
    const r = tsbuild(['build', '--add-host', bad, probe], { root });
    assert.is(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, `ERROR: --add-host "${bad}"`);
  }
});

test('--ulimit TYPE=SOFT[:HARD] and --shm-size: applied to RUN steps; defaults otherwise', () => {
  const { out } = runOut(probe, ['--ulimit', 'nofile=1234:5678', '--shm-size', '128m']);
  assert.is(read(out, 'nofile'), '1234\n5678\n');
  assert.is(read(out, 'shm'), `${128 * 1024}\n`);
  const soft = runOut(probe, ['--ulimit', 'nofile=2048']).out;
  assert.is(read(soft, 'nofile'), '2048\n2048\n');
  const plain = runOut(probe, []).out;
  assert.is(read(plain, 'shm'), `${64 * 1024}\n`, 'docker’s default /dev/shm is 64m');
  for (const [flag, bad, why] of [
    ['--ulimit', 'nofile', 'expected TYPE=SOFT'],
    ['--ulimit', 'frob=1', 'unknown type "frob"'],
    ['--ulimit', 'nofile=10:5', 'soft limit must not be above the hard limit'],
    ['--shm-size', 'lots', 'expected a size'],
    ['--shm-size', '0', 'must be more than 0'],
  ]) {
    const r = tsbuild(['build', flag!, bad!, probe], { root });
    assert.is(r.code, 2, `${flag} ${bad}: ${r.stderr}`);
    assert.match(r.stderr, why!);
  }
});

test('--add-host, --ulimit, --shm-size are part of the RUN step’s cache key (as in BuildKit’s exec op)', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo step > /f\n` });
  dirs.push(ctx);
  const run = (args: string[]) => steps(ok(tsbuild(['build', '--progress=plain', ...args, ctx], { root })).stderr);
  run([]);
  assert.equal(run([]).cached, ['RUN echo step > /f']);
  for (const args of [
    ['--add-host', 'a:1.1.1.1'],
    ['--ulimit', 'nofile=100'],
    ['--shm-size', '1g'],
  ]) {
    assert.equal(run(args).ran, ['RUN echo step > /f'], `${args.join(' ')} misses`);
    assert.equal(run(args).cached, ['RUN echo step > /f'], `${args.join(' ')} then hits`);
  }
});

test('--metadata-file: buildx’s keys, the digests of the image in the store', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY a /a\n`, a: 'meta' });
  dirs.push(ctx);
  const file = join(temp('meta'), 'metadata.json');
  ok(tsbuild(['build', '-q', '-t', 'meta:1', '-t', 'example.com/x/meta:2', '--metadata-file', file, ctx], { root }));
  const meta = JSON.parse(readFileSync(file, 'utf8'));
  const img = inspect(root, 'meta:1');
  assert.is(meta['containerimage.digest'], img.ManifestDigest);
  assert.is(meta['containerimage.config.digest'], img.Id);
  assert.is(meta['containerimage.descriptor'].digest, img.ManifestDigest);
  assert.is(meta['containerimage.descriptor'].mediaType, 'application/vnd.oci.image.manifest.v1+json');
  const manifestFile = join(root, 'blobs', 'sha256', img.ManifestDigest.slice('sha256:'.length));
  assert.is(meta['containerimage.descriptor'].size, statSync(manifestFile).size);
  assert.is(meta['image.name'], 'docker.io/library/meta:1,example.com/x/meta:2');
  const bad = tsbuild(['build', '--metadata-file', join(temp('meta'), 'no', 'such', 'dir', 'm.json'), ctx], { root });
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^ERROR: --metadata-file .*m\.json: /m);
});

test.run();
