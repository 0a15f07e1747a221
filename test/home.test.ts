// HOME in RUN steps, `run` and `exec`, as runc sets it: when the process's environment has no
// HOME (or an empty one), the home field of the first /etc/passwd entry with the process's uid,
// and "/" when there is none. An image's ENV HOME wins. The expected values are what BuildKit
// (dockerd 20.10, runc 1.1) printed for the same Dockerfile, and what `docker run`/`docker exec`
// printed for the same image, on this project's test machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const started: string[] = [];

// [USER before the RUN (or a Dockerfile line), the label the RUN prints, what BuildKit printed]
const rows: [string, string, string][] = [
  ['', 'root', '/root'],
  ['USER app', 'app by name', '/home/app'],
  ['USER 1000', 'app by uid', '/home/app'],
  ['USER nobody', 'nobody', '/home'],
  ['USER 4242', 'uid without an entry', '/'],
  ['USER 1000:100', 'uid:gid', '/home/app'],
  [
    'USER root\nRUN echo "dup:x:1000:1000:dup:/home/dup:/bin/sh" >> /etc/passwd\nUSER dup',
    'second name of uid 1000',
    '/home/app',
  ],
  ['USER root\nRUN echo "nohome:x:1500:1500:nohome::/bin/sh" >> /etc/passwd\nUSER 1500', 'empty home field', ''],
  ['USER root\nENV HOME=""', 'empty ENV HOME', '/root'],
  ['ENV HOME=/custom', 'ENV HOME', '/custom'],
  ['USER app', 'ENV HOME as app', '/custom'],
  ['USER 0:0\nENV HOME=\nRUN rm /etc/passwd', 'root without /etc/passwd', '/'],
  ['USER 1000:1000', 'uid:gid without /etc/passwd', '/'],
];

const dockerfile = [
  `FROM ${Base} AS homes`,
  'RUN mkdir /out && touch /out/homes && chmod 666 /out/homes',
  ...rows.flatMap(([before, label]) => [before, `RUN echo "${label}=[$HOME]" >> /out/homes`]).filter(Boolean),
  '',
].join('\n');

test('RUN: HOME from the user\'s /etc/passwd entry, "/" without one, ENV HOME wins', () => {
  const ctx = context({ Dockerfile: dockerfile });
  ok(t(['build', '-q', '-t', 'home/run:1', ctx]));
  const got = ok(t(['run', '--rm', 'home/run:1', 'cat', '/out/homes'])).stdout;
  assert.is(got, rows.map(([, label, want]) => `${label}=[${want}]\n`).join(''));
  cleanup(ctx);
});

test("run and exec: HOME of the process's own user, not stored with the container", async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nUSER app\n` });
  ok(t(['build', '-q', '-t', 'home/app:1', ctx]));
  const ctx2 = context({ Dockerfile: `FROM ${Base}\nENV HOME=/custom\n` });
  ok(t(['build', '-q', '-t', 'home/env:1', ctx2]));
  const runs: [string[], string][] = [
    [[Base], '/root'],
    [['home/app:1'], '/home/app'],
    [['-u', 'nobody', Base], '/home'],
    [['-u', '4242', Base], '/'],
    [['-u', '1000', Base], '/home/app'],
    [['home/env:1'], '/custom'],
    [['-u', 'app', 'home/env:1'], '/custom'],
    [['-e', 'HOME=/given', Base], '/given'],
  ];
  for (const [args, want] of runs) {
    assert.is(ok(t(['run', '--rm', ...args, 'sh', '-c', 'echo $HOME'])).stdout, `${want}\n`, args.join(' '));
  }
  const asRoot = ok(t(['run', '-d', Base, 'sleep', '300'])).stdout.trim();
  started.push(asRoot);
  const asApp = ok(t(['run', '-d', '-u', 'app', Base, 'sleep', '300'])).stdout.trim();
  started.push(asApp);
  const execs: [string, string[], string][] = [
    [asRoot, [], '/root'],
    [asRoot, ['-u', 'app'], '/home/app'],
    [asRoot, ['-u', '4242'], '/'],
    [asRoot, ['-e', 'HOME=/given'], '/given'],
    [asApp, [], '/home/app'],
    [asApp, ['-u', 'root'], '/root'],
  ];
  for (const [id, args, want] of execs) {
    assert.is(ok(t(['exec', ...args, id, 'sh', '-c', 'echo $HOME'])).stdout, `${want}\n`, `exec ${args.join(' ')}`);
  }
  // Docker's container config has no HOME either: runc adds it to the process, not the container.
  const doc = JSON.parse(ok(t(['inspect', asRoot])).stdout);
  const env = (doc.Config.env ?? doc.Config.Env) as string[];
  assert.not.ok(
    env.some((e) => e.startsWith('HOME=')),
    env.join(' '),
  );
  cleanup(ctx, ctx2);
});

test.after(() => {
  for (const id of started) t(['rm', '-f', id]);
  cleanup(root);
});
test.run();
