// A store made in a directory with a default ACL (setfacl -d) builds what a store anywhere else builds: the
// ACL is not inherited by what the store makes, so a RUN's new files take the umask's bits (0644, as docker),
// and a COPY's snapshot keeps the context's modes (before: 0600/0700 in the step after, from the ACL).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, ok, storeWithBase, tempDirs, tsbuild } from './helpers/cli.js';

const { temp, dirs } = tempDirs();
test.after(() => cleanup(...dirs));

const expected = '755 /d/f1\n644 /d/f2\n755 /d\n644 /new\n755 /newd\n';

test('a store in a directory with a default ACL builds the modes a store elsewhere builds', () => {
  const aclDir = temp('acl');
  const set = spawnSync('setfacl', ['-d', '-m', 'u::rwx,g::---,o::---', aclDir], { encoding: 'utf8' });
  assert.is(set.status, 0, `setfacl (package acl): ${set.stderr ?? set.error}`);
  const ctx = temp('ctx');
  mkdirSync(join(ctx, 'd'));
  // Enough files for the COPY to go through cp (bulkcopy), one executable, one not.
  for (let i = 0; i < 40; i++) writeFileSync(join(ctx, 'd', `f${i}`), `${i}\n`);
  chmodSync(join(ctx, 'd', 'f1'), 0o755);
  chmodSync(join(ctx, 'd', 'f2'), 0o644);
  chmodSync(join(ctx, 'd'), 0o755);
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `FROM ${Base}\nCOPY d /d\n` +
      `RUN stat -c '%a %n' /d/f1 /d/f2 /d > /modes && touch /new && mkdir /newd && ` +
      `stat -c '%a %n' /new /newd >> /modes\n`,
  );
  for (const root of [storeWithBase(temp('store')), storeWithBase(join(aclDir, 'store'))]) {
    ok(tsbuild(['build', '--progress=plain', '--network', 'none', '-t', 'acl:1', ctx], { root }), root);
    const r = ok(tsbuild(['run', '--rm', '--network', 'none', 'acl:1', 'cat', '/modes'], { root }), root);
    assert.is(r.stdout, expected, `modes in the store at ${root}`);
  }
});

// A store made before stores dropped the inherited ACL keeps it on its temp dir, where a COPY stages its files: the
// copier (native/copy.c) then sets every mode itself and removes the ACLs the new entries inherit, as cp's
// --preserve=mode did. The modes a RUN sees are the context's.
test("a store whose temp dir kept a default ACL: COPY keeps the context's modes", () => {
  const store = storeWithBase(temp('store'));
  const set = spawnSync('setfacl', ['-d', '-m', 'u::rwx,g::---,o::---', join(store, 'tmp')], { encoding: 'utf8' });
  assert.is(set.status, 0, `setfacl (package acl): ${set.stderr ?? set.error}`);
  const ctx = temp('ctx');
  mkdirSync(join(ctx, 'd', 'sub'), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(ctx, 'd', `f${i}`), `${i}\n`);
  writeFileSync(join(ctx, 'd', 'sub', 'x'), 'x\n');
  chmodSync(join(ctx, 'd', 'f1'), 0o755);
  chmodSync(join(ctx, 'd', 'f2'), 0o644);
  chmodSync(join(ctx, 'd', 'sub'), 0o751);
  chmodSync(join(ctx, 'd'), 0o755);
  writeFileSync(
    join(ctx, 'Dockerfile'),
    `FROM ${Base}\nCOPY d /d\nRUN stat -c '%a %n' /d/f1 /d/f2 /d/sub /d/sub/x /d > /modes\n`,
  );
  ok(tsbuild(['build', '--progress=plain', '--network', 'none', '-t', 'acl:2', ctx], { root: store }), store);
  const r = ok(tsbuild(['run', '--rm', '--network', 'none', 'acl:2', 'cat', '/modes'], { root: store }), store);
  assert.is(r.stdout, '755 /d/f1\n644 /d/f2\n751 /d/sub\n644 /d/sub/x\n755 /d\n');
});

test.run();
