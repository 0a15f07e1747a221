// `run --mount type=bind|volume|tmpfs,...`: docker's second spelling of -v (and of a tmpfs), over the same
// mounts. Each row is a --mount spec and what the container sees, or the error and docker's exit status 125.
// The expectations are docker 20.10's (CLI and daemon), except where a row says tsbuild refuses what it cannot
// honour (shared or slave propagation, volume drivers and their options).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Base, cleanup, command, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const host = tempDir('mount-src');
const dirs = [root, host];
/** An image with a file in /data, which a new volume there is seeded with (unless volume-nocopy). */
const img = 'mount/seeded:1';

test.before(() => {
  writeFileSync(join(host, 'in'), 'from host\n');
  mkdirSync(join(host, 'a,b'));
  writeFileSync(join(host, 'a,b', 'in'), 'comma\n');
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN mkdir /data && echo seed > /data/s\n` });
  dirs.push(ctx);
  ok(t(['build', '-q', '-t', img, ctx]));
});

test.after(() => {
  for (const v of ['mv1', 'mv2', 'mv3', 'mv4']) t(['volume', 'rm', '-f', v]);
  cleanup(...dirs);
});

/** The mount's line of /proc/self/mountinfo as "OPTIONS FSTYPE SUPEROPTIONS": "rw,nosuid,nodev tmpfs rw,size=4k". */
const info = (target: string) =>
  `awk '$5 == "${target}" { for (i = 7; $i != "-"; i++); print $6, $(i+1), $(i+3) }' /proc/self/mountinfo`;

const seen: { name: string; mounts: string[]; image?: string; script: string; stdout: RegExp; onHost?: string }[] = [
  {
    name: 'bind: read and written through, type= and the long key names',
    mounts: [`type=bind,source=${host},target=/m`],
    script: 'cat /m/in; echo from ctr > /m/out',
    stdout: /^from host\n$/,
    onHost: 'out',
  },
  {
    name: 'bind: src= and dst=, readonly (a key alone is true)',
    mounts: [`type=bind,src=${host},dst=/m,readonly`],
    script: `${info('/m')}; cat /m/in; touch /m/x 2>&1 || echo refused`,
    stdout: /^ro,\S+ \S+ \S+\nfrom host\n.*Read-only file system\nrefused\n$/,
  },
  {
    name: 'bind: ro=1, destination=',
    mounts: [`type=bind,src=${host},destination=/m,ro=1`],
    script: info('/m'),
    stdout: /^ro,/,
  },
  {
    name: 'bind: ro=false is writable',
    mounts: [`type=bind,src=${host},dst=/m,ro=false`],
    script: info('/m'),
    stdout: /^rw,/,
  },
  {
    name: 'bind: a file, keys and the type in any case',
    mounts: [`TYPE=BIND,Source=${host}/in,Target=/etc/in`],
    script: 'cat /etc/in',
    stdout: /^from host\n$/,
  },
  {
    name: 'bind: a quoted field holds a comma (csv)',
    mounts: [`type=bind,"src=${host}/a,b",dst=/m`],
    script: 'cat /m/in',
    stdout: /^comma\n$/,
  },
  {
    name: 'bind: bind-propagation private and rprivate (what the container has anyway)',
    mounts: [
      `type=bind,src=${host},dst=/m,bind-propagation=private`,
      `type=bind,src=${host},dst=/n,bind-propagation=rprivate`,
    ],
    script: 'cat /m/in /n/in',
    stdout: /^from host\nfrom host\n$/,
  },
  {
    name: 'bind: the target is cleaned (/m/../x is /x); consistency is taken and ignored',
    mounts: [`type=bind,src=${host},dst=/m/../x,consistency=cached`],
    script: 'cat /x/in',
    stdout: /^from host\n$/,
  },
  {
    name: 'bind: bind-nonrecursive=false is the default',
    mounts: [`type=bind,src=${host},dst=/m,bind-nonrecursive=false`],
    script: 'cat /m/in',
    stdout: /^from host\n$/,
  },
  {
    name: 'volume: named, seeded from the image',
    mounts: ['type=volume,src=mv1,dst=/data'],
    image: img,
    script: 'cat /data/s',
    stdout: /^seed\n$/,
  },
  {
    name: 'volume: the default type; volume-driver=local',
    mounts: ['source=mv2,target=/data,volume-driver=local'],
    image: img,
    script: 'cat /data/s',
    stdout: /^seed\n$/,
  },
  {
    name: 'volume: anonymous when it has no source',
    mounts: ['type=volume,dst=/data'],
    image: img,
    script: 'cat /data/s',
    stdout: /^seed\n$/,
  },
  {
    name: 'volume: named, readonly',
    mounts: ['type=volume,src=mv1,dst=/data,ro'],
    image: img,
    script: `${info('/data')}; cat /data/s`,
    stdout: /^ro,\S+ \S+ \S+\nseed\n$/,
  },
  {
    name: 'volume: volume-nocopy leaves a new volume empty',
    mounts: ['type=volume,src=mv3,dst=/data,volume-nocopy'],
    image: img,
    script: 'ls -A /data; echo end',
    stdout: /^end\n$/,
  },
  {
    name: 'volume: volume-nocopy=true',
    mounts: ['type=volume,src=mv4,dst=/data,volume-nocopy=true'],
    image: img,
    script: 'ls -A /data; echo end',
    stdout: /^end\n$/,
  },
  {
    name: "tmpfs: docker's nosuid,nodev,noexec, mode 1777, no size",
    mounts: ['type=tmpfs,dst=/m'],
    script: `${info('/m')}; stat -c %a /m; echo 'echo ran' > /m/s; chmod +x /m/s; /m/s 2>&1 || echo refused`,
    stdout: /^rw,nosuid,nodev,noexec(,\S+)? tmpfs rw(,inode64)?\n1777\n.*\nrefused\n$/,
  },
  {
    name: 'tmpfs: tmpfs-size and tmpfs-mode (octal)',
    mounts: ['type=tmpfs,dst=/m,tmpfs-size=1m,tmpfs-mode=700'],
    script: `${info('/m')}; stat -c %a /m`,
    stdout: /^rw,\S+ tmpfs rw,size=1024k,mode=700(,inode64)?\n700\n$/,
  },
  {
    name: 'tmpfs: a size in bytes is rounded up to a page; 0 is no size; 0 is no mode',
    mounts: ['type=tmpfs,dst=/m,tmpfs-size=1000', 'type=tmpfs,dst=/n,tmpfs-size=0,tmpfs-mode=0'],
    script: `${info('/m')}; ${info('/n')}; stat -c %a /n`,
    stdout: /^\S+ tmpfs rw,size=4k(,inode64)?\n\S+ tmpfs rw(,inode64)?\n1777\n$/,
  },
  {
    name: 'tmpfs: readonly',
    mounts: ['type=tmpfs,dst=/m,readonly=true'],
    script: `${info('/m')}; touch /m/x 2>&1 || echo refused`,
    stdout: /^ro,\S+ tmpfs \S+\n.*Read-only file system\nrefused\n$/,
  },
  {
    name: 'next to -v: both kinds in one container',
    mounts: [`type=tmpfs,dst=/t`, '-v', `${host}:/v:ro`],
    script: `cat /v/in; ${info('/t')}`,
    stdout: /^from host\n\S+ tmpfs /,
  },
];

for (const c of seen)
  test(`run --mount ${c.name}`, () => {
    const flags = c.mounts.flatMap((m, i) => (m === '-v' || c.mounts[i - 1] === '-v' ? [m] : ['--mount', m]));
    const r = t(['run', '--rm', '--network', 'none', ...flags, c.image ?? Base, 'sh', '-c', c.script]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, c.stdout);
    if (c.onHost) assert.is(readFileSync(join(host, c.onHost), 'utf8'), 'from ctr\n');
  });

const refused: { spec: string | string[]; error: string | RegExp }[] = [
  // Docker's CLI
  { spec: `type=bind,src=${host}`, error: 'target is required' },
  { spec: `type=,src=${host},dst=/m`, error: 'type is required' },
  { spec: `type=bind,src=${host},dst=/m,bogus=1`, error: "unexpected key 'bogus' in 'bogus=1'" },
  { spec: `type=bind,src=${host},dst=/m,bogus`, error: "invalid field 'bogus' must be a key=value pair" },
  { spec: `type=bind,src=${host},dst=/m,`, error: "invalid field '' must be a key=value pair" },
  { spec: `type=bind,src=${host},dst=/m,readonly=yes`, error: 'invalid value for readonly: yes' },
  { spec: `type=bind,src=${host},dst=/m,bind-nonrecursive=maybe`, error: 'invalid value for bind-nonrecursive: maybe' },
  { spec: 'type=volume,src=v,dst=/m,volume-nocopy=xx', error: 'invalid value for volume-nocopy: xx' },
  { spec: 'type=tmpfs,dst=/m,tmpfs-size=xx', error: 'invalid value for tmpfs-size: xx' },
  { spec: 'type=tmpfs,dst=/m,tmpfs-size=-1', error: 'invalid value for tmpfs-size: -1' },
  { spec: 'type=tmpfs,dst=/m,tmpfs-mode=9', error: 'invalid value for tmpfs-mode: 9' },
  {
    spec: 'type=volume,dst=/m,bind-propagation=private',
    error: "cannot mix 'bind-*' options with mount type 'volume'",
  },
  { spec: 'type=tmpfs,dst=/m,volume-nocopy', error: "cannot mix 'volume-*' options with mount type 'tmpfs'" },
  { spec: `type=bind,src=${host},dst=/m,tmpfs-size=1m`, error: "cannot mix 'tmpfs-*' options with mount type 'bind'" },
  { spec: `type=bind,src="${host}",dst=/m`, error: 'bare " in non-quoted-field' },
  { spec: '', error: 'an empty mount specification' },
  // Docker's daemon
  { spec: 'type=bind,src=/no/such/dir,dst=/m', error: 'bind source path does not exist: /no/such/dir' },
  { spec: 'type=bind,dst=/m', error: 'invalid mount config for type "bind": field Source must not be empty' },
  { spec: 'type=bind,src=rel,dst=/m', error: "invalid mount path: 'rel' mount path must be absolute" },
  { spec: `type=bind,src=${host},dst=m`, error: "invalid mount path: 'm' mount path must be absolute" },
  { spec: `type=bind,src=${host},dst=/`, error: "invalid specification: destination can't be '/'" },
  { spec: `type=bind,src=${host},dst=/m,bind-propagation=foo`, error: 'invalid propagation mode: foo' },
  { spec: `type=foo,src=${host},dst=/m`, error: 'invalid mount config for type "foo": mount type unknown' },
  {
    spec: 'type=tmpfs,src=x,dst=/m',
    error: 'invalid mount config for type "tmpfs": field Source must not be specified',
  },
  { spec: 'type=volume,dst=/m,ro', error: 'must not set ReadOnly mode when using anonymous volumes' },
  { spec: 'type=tmpfs,dst=rel', error: "invalid mount path: 'rel' mount path must be absolute" },
  { spec: 'type=volume,src=/abs,dst=/m', error: '"/abs" includes invalid characters for a local volume name' },
  { spec: ['-v', `${host}:/m`, '--mount', 'type=tmpfs,dst=/m'], error: 'duplicate mount point: /m' },
  // What tsbuild cannot honour
  ...['shared', 'rshared', 'slave', 'rslave'].map((p) => ({
    spec: `type=bind,src=${host},dst=/m,bind-propagation=${p}`,
    error: `bind-propagation=${p} is not supported`,
  })),
  { spec: 'type=volume,src=v,dst=/m,volume-driver=nfs', error: 'volume-driver=nfs is not supported' },
  { spec: 'type=volume,src=v,dst=/m,volume-opt=type=tmpfs', error: 'volume-opt is not supported' },
  { spec: 'type=volume,src=v,dst=/m,volume-label=a=b', error: 'volume-label is not supported' },
];

for (const c of refused) {
  const args = typeof c.spec === 'string' ? ['--mount', c.spec] : c.spec;
  test(`run --mount refused: ${args.join(' ')}`, () => {
    const r = t(['run', '--rm', '--network', 'none', ...args, Base, 'true']);
    assert.is(r.code, 125, r.stderr);
    const flag = typeof c.spec === 'string' ? `ERROR: --mount ${c.spec || '""'}: ` : 'ERROR: ';
    assert.ok(r.stderr.startsWith(flag), r.stderr);
    if (typeof c.error === 'string') assert.ok(r.stderr.includes(c.error), r.stderr);
    else assert.match(r.stderr, c.error);
    assert.not.match(r.stderr, /\n\s+at /);
  });
}

// bind-nonrecursive as docker 20.10 takes it: the source without the mounts beneath it (a later docker CLI warns it is
// deprecated; 20.10's takes it as it is). Each run is in a mount namespace of its own, where the source has a tmpfs
// beneath it: the host keeps no mount.
const recursion: { opts: string; stdout: string }[] = [
  { opts: '', stdout: 'outer\ninner\n' },
  { opts: ',bind-nonrecursive', stdout: 'outer\n' },
  { opts: ',bind-nonrecursive=true,ro', stdout: 'outer\nread-only\n' },
  { opts: ',bind-nonrecursive=false', stdout: 'outer\ninner\n' },
];
test('run --mount type=bind: the mounts beneath the source, unless bind-nonrecursive', () => {
  const d = join(host, 'recursion');
  mkdirSync(join(d, 'sub'), { recursive: true });
  writeFileSync(join(d, 'o'), 'outer\n');
  const inNs = 'mount -t tmpfs tmpfs "$1/sub" && echo inner > "$1/sub/f" && shift && exec "$@"';
  const script = 'cat /m/o; cat /m/sub/f 2>/dev/null; touch /m/w 2>/dev/null || echo read-only';
  for (const c of recursion) {
    const mount = `type=bind,src=${d},dst=/m${c.opts}`;
    const args = ['run', '--rm', '--network', 'none', '--mount', mount, Base, 'sh', '-c', script];
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', inNs, 'sh', d, command, ...args], {
      env: { ...process.env, CI: 'true', TSBUILD_ROOT: root },
      encoding: 'utf8',
    });
    assert.is(r.status, 0, `${mount}: ${r.stderr}`);
    assert.is(r.stdout, c.stdout, mount);
  }
});

// A missing host directory: docker 20.10 (as root) makes it for -v, with its missing parents, 0755 whatever the umask,
// when the container starts; --mount type=bind refuses it (125). Neither makes anything below a file (125).
const missingSources: {
  name: string;
  flags: (dir: string) => string[];
  code: number;
  stderr?: string;
  made: boolean;
}[] = [
  { name: '-v makes it, and its parents', flags: (d) => ['-v', `${d}/a/b:/mnt`], code: 0, made: true },
  { name: '-v :ro too', flags: (d) => ['-v', `${d}/a/b:/mnt:ro`], code: 0, made: true },
  {
    name: '--mount type=bind refuses it',
    flags: (d) => ['--mount', `type=bind,src=${d}/a/b,dst=/mnt`],
    code: 125,
    stderr: 'bind source path does not exist',
    made: false,
  },
  {
    name: '-v below a file',
    flags: (d) => ['-v', `${d}/file/a/b:/mnt`],
    code: 125,
    stderr: "/file/a/b': mkdir ", // then D/file: not a directory, as Go's MkdirAll says it
    made: false,
  },
];
for (const c of missingSources)
  test(`run with a missing bind source: ${c.name}`, () => {
    const d = join(host, `missing-${c.name.replace(/\W+/g, '-')}`);
    mkdirSync(d);
    writeFileSync(join(d, 'file'), '');
    const umask = process.umask(0o077);
    let r;
    try {
      r = t(['run', '--rm', '--network', 'none', ...c.flags(d), Base, 'sh', '-c', 'ls -A /mnt; echo listed']);
    } finally {
      process.umask(umask);
    }
    assert.is(r.code, c.code, r.stderr);
    if (c.stderr) assert.ok(r.stderr.includes(c.stderr), r.stderr);
    else assert.is(r.stdout, 'listed\n');
    assert.is(existsSync(join(d, 'a')), c.made, 'made on the host');
    if (c.made)
      for (const p of ['a', 'a/b']) {
        const st = statSync(join(d, p));
        assert.ok(st.isDirectory(), p);
        assert.is((st.mode & 0o7777).toString(8), '755', p);
      }
  });

// docker leaves a container whose mount source it could not make Created (it never started), and says why as Go does.
test('run -v below a file: exit 125, "mkdir D/file: not a directory", the container left Created', () => {
  const d = join(host, 'created-below-file');
  mkdirSync(d);
  writeFileSync(join(d, 'file'), '');
  const r = t(['run', '--name', 'below-file', '-v', `${d}/file/x:/mnt`, Base, 'true']);
  assert.is(r.code, 125, r.stderr);
  assert.ok(r.stderr.includes(`mkdir ${d}/file: not a directory`), r.stderr);
  assert.is(ok(t(['inspect', '-f', '{{.State.Status}}', 'below-file'])).stdout.trim(), 'created');
  ok(t(['rm', 'below-file']));
});

// The mode of a directory -v makes comes from the umask at mkdir(2). A chmod by path after it would follow a
// symlink that someone who may write in the parent put there meanwhile, onto any file of the host.
test('run -v making a missing source: no chmod by path (strace)', () => {
  const d = join(host, 'no-chmod');
  mkdirSync(d);
  const trace = join(d, 'trace');
  const r = spawnSync(
    'strace',
    ['-f', '-qq', '-e', 'trace=chmod,fchmodat', '-o', trace, command, 'run', '--rm', '--network', 'none'].concat([
      '-v',
      `${d}/made/sub:/mnt`,
      Base,
      'true',
    ]),
    { encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: root } },
  );
  assert.is(r.status, 0, r.stderr);
  assert.ok(statSync(join(d, 'made', 'sub')).isDirectory(), 'made');
  const calls = readFileSync(trace, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`${d}/made`));
  assert.equal(calls, [], 'chmod calls on the made directories');
});

// Every -v and --mount is read before a volume is made: a bad one after a new named volume leaves no volume.
test('a refused mount leaves no volume behind', () => {
  for (const bad of [
    ['--mount', 'type=volume,src=left1,dst=/a', '--mount', 'type=bind,src=/no/such,dst=/b'],
    ['-v', 'left1:/a', '-v', 'bad name!:/b'],
  ]) {
    const r = t(['run', '--rm', ...bad, Base, 'true']);
    assert.is(r.code, 125, r.stderr);
    assert.not.match(ok(t(['volume', 'ls', '-q'])).stdout, /left1/);
  }
});

test.run();
