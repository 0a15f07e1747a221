// The groups of a process, as `id` prints them. Docker's daemon puts the primary gid among the
// supplementary groups of a container's process (`run` and `exec`); BuildKit's RUN steps have only the
// groups /etc/group lists the user in. The RUN and `run` rows are what BuildKit (dockerd 20.10, runc 1.1)
// and `docker run` printed for the base image (see the differential cases user-group-names and run-groups).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const started: string[] = [];

test('RUN: the groups /etc/group lists, without the primary gid', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nUSER app\nRUN id > /tmp/id\n` });
  ok(t(['build', '-q', '-t', 'groups/run:1', ctx]));
  const got = ok(t(['run', '--rm', 'groups/run:1', 'cat', '/tmp/id'])).stdout;
  assert.is(got, 'uid=1000(app) gid=1000(app) groups=100(users)\n');
  cleanup(ctx);
});

// [user flag, what `id` prints]
const rows: [string[], string][] = [
  [[], 'uid=0(root) gid=0(root) groups=0(root)\n'],
  [['-u', 'app'], 'uid=1000(app) gid=1000(app) groups=100(users),1000(app)\n'],
  [['-u', '1000'], 'uid=1000(app) gid=1000(app) groups=100(users),1000(app)\n'],
  [['-u', 'app:users'], 'uid=1000(app) gid=100(users) groups=100(users)\n'],
  [['-u', '4242'], 'uid=4242 gid=0(root) groups=0(root)\n'],
];

test('run and exec: the primary gid among the supplementary groups, as docker run and exec', () => {
  for (const [args, want] of rows) {
    assert.is(ok(t(['run', '--rm', ...args, Base, 'id'])).stdout, want, `run ${args.join(' ')}`);
  }
  const id = ok(t(['run', '-d', Base, 'sleep', '300'])).stdout.trim();
  started.push(id);
  for (const [args, want] of rows) {
    assert.is(ok(t(['exec', ...args, id, 'id'])).stdout, want, `exec ${args.join(' ')}`);
  }
});

test.after(() => {
  for (const id of started) t(['rm', '-f', id]);
  cleanup(root);
});
test.run();
