// `build --load`: the image streamed into a Docker daemon's image-load endpoint. Against a private
// dockerd (testkit's dockerd.ts): the daemon lists the image by its tag and id and runs it. Against
// small fake daemons on a unix socket: a refusal in the daemon's message stream and a daemon that
// hangs up mid-stream are one-line errors, exit 1; no daemon at all is said before anything is built.
// The same dockerd's BuildKit is the reference for --add-host's /etc/hosts lines and --label's merge.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { skip, startDockerd, type Dockerd } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, storeWithBase, tsbuild, tsbuildP, tempDirs } from './helpers/cli.js';

const { temp, dirs } = tempDirs();
let root: string;
let daemon: Dockerd | string;

test.before(async () => {
  root = storeWithBase(temp('store'));
  daemon = await startDockerd(temp('dockerd'));
});
test.after(async () => {
  if (typeof daemon !== 'string') await daemon.stop();
  cleanup(...dirs);
});

const app = context({
  Dockerfile: `FROM ${Base}\nRUN echo "hello from a loaded image" > /msg\nCMD ["cat", "/msg"]\n`,
});
dirs.push(app);

test('--load -t NAME: the daemon lists the image under its tag and id, and runs it', async () => {
  if (typeof daemon === 'string') return skip(daemon);
  const d = daemon;
  const env = { DOCKER_HOST: d.host };
  const r = await tsbuildP(['build', '--progress=plain', '--load', '-t', 'loaded/app:1', app], { root, env });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, `load into the Docker daemon at ${d.host}`);
  const id = JSON.parse(ok(tsbuild(['inspect', 'loaded/app:1'], { root })).stdout).Id as string;
  const listed = d.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  assert.is(listed.code, 0, listed.stderr);
  assert.ok(listed.stdout.split('\n').includes(`loaded/app:1 ${id}`), listed.stdout);
  const run = d.docker(['run', '--rm', 'loaded/app:1']);
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'hello from a loaded image\n');
  // Without -t the image is loaded untagged, known by its id.
  const other = context({ Dockerfile: `FROM ${Base}\nRUN echo untagged > /msg\nCMD ["cat", "/msg"]\n` });
  dirs.push(other);
  const q = await tsbuildP(['build', '-q', '--load', other], { root, env });
  assert.is(q.code, 0, q.stderr);
  const untagged = q.stdout.trim();
  const byId = d.docker(['run', '--rm', untagged]);
  assert.is(byId.stdout, 'untagged\n', byId.stderr);
});

test('-o type=docker without dest= is --load, as in buildx', async () => {
  if (typeof daemon === 'string') return skip(daemon);
  const d = daemon;
  const r = await tsbuildP(['build', '-q', '-o', 'type=docker', '-t', 'loaded/output:2', app], {
    root,
    env: { DOCKER_HOST: d.host },
  });
  assert.is(r.code, 0, r.stderr);
  const run = d.docker(['run', '--rm', 'loaded/output:2']);
  assert.is(run.stdout, 'hello from a loaded image\n', run.stderr);
});

/** A fake Docker daemon on a unix socket: /_ping answers, /images/load does what `load` says. */
async function fakeDaemon(
  load: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void,
) {
  const sock = join(temp('fake'), 'docker.sock');
  const server: Server = createServer((req, res) => {
    if (req.url === '/_ping') res.end('OK');
    else if (req.url?.startsWith('/images/load')) load(req, res);
    else res.writeHead(404).end('{"message":"page not found"}');
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return { host: `unix://${sock}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('--load: a daemon that refuses the image, or hangs up mid-stream: exit 1, one error line', async () => {
  const refusing = await fakeDaemon((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"errorDetail":{"message":"no space left"},"error":"no space left on device"}\n');
    });
  });
  const hangup = await fakeDaemon((req) => {
    let seen = 0;
    req.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen > 64 * 1024) req.socket.destroy();
    });
  });
  try {
    for (const [daemonHost, why] of [
      [refusing.host, '--load: the Docker daemon refused the image: no space left on device'],
      [hangup.host, `--load: `],
    ] as const) {
      const r = await tsbuildP(['build', '-q', '--load', '-t', 'x:1', app], { root, env: { DOCKER_HOST: daemonHost } });
      assert.is(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.is(lines.length, 1, r.stderr);
      assert.ok(lines[0].startsWith(`ERROR: ${why}`), r.stderr);
    }
  } finally {
    await refusing.close();
    await hangup.close();
  }
});

test('--load with no daemon: said before the build, which does not run', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo never > /never\n` });
  dirs.push(ctx);
  const sock = join(temp('none'), 'docker.sock');
  const r = tsbuild(['build', '--progress=plain', '--load', ctx], { root, env: { DOCKER_HOST: `unix://${sock}` } });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, `ERROR: --load: cannot reach the Docker daemon at unix://${sock}`);
  assert.not.match(r.stderr, 'RUN echo never');
  const bad = tsbuild(['build', '--load', ctx], { root, env: { DOCKER_HOST: 'ssh://user@host' } });
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, 'ERROR: --load: DOCKER_HOST=ssh://user@host is not unix:///PATH or tcp://HOST:PORT');
});

test('--add-host and --label as dockerd’s BuildKit applies them (same hosts lines, same labels)', async () => {
  if (typeof daemon === 'string') return skip(daemon);
  const d = daemon;
  const baseTar = join(temp('base'), 'base.tar');
  ok(tsbuild(['save', Base, '-o', baseTar], { root }));
  assert.is(d.docker(['load', '-i', baseTar]).code, 0, 'docker load of the base');
  const ctx = context({
    Dockerfile: `FROM ${Base}\nLABEL a=dockerfile b=kept\nRUN cat /etc/hosts > /hosts\n`,
  });
  dirs.push(ctx);
  const flags = [
    '--add-host',
    'db.internal:10.1.2.3',
    '--add-host',
    'v6:fd00::1',
    '--label',
    'a=flag',
    '--label',
    'c=3',
  ];
  const bk = d.docker(['build', '-q', ...flags, '-t', 'compare:bk', ctx], { DOCKER_BUILDKIT: '1' });
  assert.is(bk.code, 0, bk.stderr);
  const bkHosts = d.docker(['run', '--rm', 'compare:bk', 'cat', '/hosts']).stdout.trim().split('\n');
  const bkLabels = JSON.parse(
    d.docker(['image', 'inspect', '--format', '{{json .Config.Labels}}', 'compare:bk']).stdout,
  );
  const out = temp('out');
  ok(tsbuild(['build', ...flags, '-t', 'compare:ts', '-o', `type=local,dest=${out}`, ctx], { root }));
  const tsHosts = readFileSync(join(out, 'hosts'), 'utf8').trim().split('\n');
  // The entries --add-host adds: the same lines, at the end, in the same order.
  assert.equal(tsHosts.slice(-2), bkHosts.slice(-2));
  assert.equal(bkHosts.slice(-2), ['10.1.2.3\tdb.internal', 'fd00::1\tv6']);
  assert.equal(JSON.parse(ok(tsbuild(['inspect', 'compare:ts'], { root })).stdout).Config.Labels, bkLabels);
});

test.run();
