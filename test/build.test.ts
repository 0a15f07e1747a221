// Every instruction through the CLI: each case builds a small context on the busybox base,
// then checks the image's config and its files as umoci unpacks them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { copyFileSync, existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { Base, cleanup, context, ok, repo, storeWithBase, tempDir, tsbuild, type FileSpec } from './helpers/cli.js';
import { inspect, umociRootfs } from './helpers/image.js';

interface FileExpect {
  content?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  symlink?: string;
  dir?: boolean;
  absent?: boolean;
}

interface Case {
  name: string;
  files?: Record<string, FileSpec>;
  dockerfile: string;
  args?: string[];
  config?: Record<string, unknown>;
  author?: string;
  expect?: Record<string, FileExpect>;
}

const cases: Case[] = [
  {
    name: 'ENV both forms, LABEL, EXPOSE, VOLUME, USER, STOPSIGNAL, MAINTAINER',
    dockerfile:
      `FROM ${Base}\nENV A=1 B="two words"\nENV C three four\nLABEL org.example.x="y z" k=v\n` +
      `EXPOSE 80 443/udp 8000-8001\nVOLUME ["/data", "/logs"]\nUSER app:users\nSTOPSIGNAL SIGTERM\n` +
      `MAINTAINER someone@example.com\n`,
    config: {
      Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'A=1', 'B=two words', 'C=three four'],
      Labels: { 'org.example.x': 'y z', k: 'v' },
      ExposedPorts: { '80/tcp': {}, '443/udp': {}, '8000/tcp': {}, '8001/tcp': {} },
      Volumes: { '/data': {}, '/logs': {} },
      User: 'app:users',
      StopSignal: 'SIGTERM',
    },
    author: 'someone@example.com',
  },
  {
    name: 'ENTRYPOINT resets an inherited CMD; CMD shell form goes through SHELL',
    dockerfile: `FROM ${Base}\nENTRYPOINT ["/bin/echo"]\n`,
    config: { Entrypoint: ['/bin/echo'], Cmd: null },
  },
  {
    name: 'CMD then ENTRYPOINT in the same stage keeps CMD; SHELL changes shell form',
    dockerfile: `FROM ${Base}\nCMD ["x"]\nSHELL ["/bin/sh", "-ec"]\nENTRYPOINT echo hi\n`,
    config: { Cmd: ['x'], Shell: ['/bin/sh', '-ec'], Entrypoint: ['/bin/sh', '-ec', 'echo hi'] },
  },
  {
    name: 'HEALTHCHECK with durations; ONBUILD is recorded',
    dockerfile:
      `FROM ${Base}\nHEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD wget -q localhost || exit 1\n` +
      `ONBUILD RUN echo child\n`,
    config: {
      Healthcheck: { Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 5e9, Timeout: 2e9, Retries: 4 },
      OnBuild: ['RUN echo child'],
    },
  },
  {
    name: 'ARG reaches RUN but never the config; build-arg overrides',
    dockerfile: `FROM ${Base}\nARG GREETING=hello\nARG WHO\nRUN echo "$GREETING $WHO" > /out.txt\n`,
    args: ['--build-arg', 'WHO=tsbuild'],
    config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] },
    expect: { 'out.txt': { content: 'hello tsbuild\n' } },
  },
  {
    name: 'ENV wins over ARG of the same name in RUN',
    dockerfile: `FROM ${Base}\nARG X=arg\nENV X=env\nRUN echo $X > /x\n`,
    expect: { x: { content: 'env\n' } },
  },
  {
    name: 'RUN exec form and heredoc',
    dockerfile:
      `FROM ${Base}\nRUN ["/bin/sh", "-c", "echo exec > /exec.txt"]\nRUN <<EOF\necho one > /heredoc.txt\n` +
      `echo two >> /heredoc.txt\nEOF\n`,
    expect: { 'exec.txt': { content: 'exec\n' }, 'heredoc.txt': { content: 'one\ntwo\n' } },
  },
  {
    name: 'RUN heredoc with a shebang runs as a file',
    dockerfile: `FROM ${Base}\nRUN <<EOF\n#!/bin/sh\necho "from script $0" > /script.txt\nEOF\n`,
    expect: { 'script.txt': {} },
  },
  {
    name: 'WORKDIR is created, owned by USER; relative WORKDIR resolves',
    dockerfile: `FROM ${Base}\nUSER app\nWORKDIR /srv/app\nWORKDIR sub\nRUN pwd > /tmp/pwd && id -u >> /tmp/pwd\n`,
    config: { WorkingDir: '/srv/app/sub', User: 'app' },
    expect: {
      'srv/app/sub': { dir: true, uid: 1000, gid: 1000 },
      'srv/app': { dir: true, uid: 1000 },
      'tmp/pwd': { content: '/srv/app/sub\n1000\n' },
    },
  },
  {
    name: 'COPY a directory copies its contents; trailing slash; relative dest under WORKDIR',
    files: { 'src/a.txt': 'a', 'src/sub/b.txt': 'b', 'one.txt': '1' },
    dockerfile: `FROM ${Base}\nWORKDIR /app\nCOPY src ./code/\nCOPY one.txt ./\nCOPY one.txt /renamed\n`,
    expect: {
      'app/code/a.txt': { content: 'a', uid: 0 },
      'app/code/sub/b.txt': { content: 'b' },
      'app/one.txt': { content: '1' },
      renamed: { content: '1' },
      'app/code/src': { absent: true },
    },
  },
  {
    name: 'COPY wildcards into a directory',
    files: { 'a.md': 'A', 'b.md': 'B', 'c.txt': 'C' },
    dockerfile: `FROM ${Base}\nCOPY *.md /docs/\n`,
    expect: { 'docs/a.md': { content: 'A' }, 'docs/b.md': { content: 'B' }, 'docs/c.txt': { absent: true } },
  },
  {
    name: 'COPY --chown by name and --chmod',
    files: { 'f.txt': 'x' },
    dockerfile: `FROM ${Base}\nCOPY --chown=app:users --chmod=640 f.txt /f.txt\nCOPY --chown=1234 f.txt /g.txt\n`,
    expect: { 'f.txt': { uid: 1000, gid: 100, mode: 0o640 }, 'g.txt': { uid: 1234, gid: 1234 } },
  },
  {
    name: '.dockerignore with ** and ! exceptions',
    files: {
      '.dockerignore': '**/*.log\nsecret/\n!keep.log\n',
      'a.log': 'x',
      'keep.log': 'k',
      'deep/b.log': 'x',
      'secret/s': 's',
      'ok.txt': 'ok',
    },
    dockerfile: `FROM ${Base}\nCOPY . /ctx/\n`,
    expect: {
      'ctx/ok.txt': { content: 'ok' },
      'ctx/keep.log': { content: 'k' },
      'ctx/a.log': { absent: true },
      'ctx/deep/b.log': { absent: true },
      'ctx/secret': { absent: true },
    },
  },
  {
    name: 'symlinks in the context are copied as symlinks, never followed out',
    files: { 'dir/real.txt': 'real', 'dir/link': { symlink: 'real.txt' }, 'dir/escape': { symlink: '/etc/passwd' } },
    dockerfile: `FROM ${Base}\nCOPY dir /d/\n`,
    expect: {
      'd/link': { symlink: 'real.txt' },
      'd/escape': { symlink: '/etc/passwd' },
      'd/real.txt': { content: 'real' },
    },
  },
  {
    name: 'COPY --exclude and --parents',
    files: { 'a/x.txt': 'x', 'a/y.tmp': 'y', 'b/z.txt': 'z' },
    dockerfile:
      `# syntax=docker/dockerfile:1.7-labs\nFROM ${Base}\nCOPY --exclude=*.tmp a /ex/\n` +
      `COPY --parents a/x.txt b/z.txt /par/\n`,
    expect: {
      'ex/x.txt': { content: 'x' },
      'ex/y.tmp': { absent: true },
      'par/a/x.txt': { content: 'x' },
      'par/b/z.txt': { content: 'z' },
    },
  },
  {
    name: 'COPY heredoc',
    dockerfile: `FROM ${Base}\nCOPY <<EOF /greeting.txt\nhi there\nEOF\n`,
    expect: { 'greeting.txt': { content: 'hi there\n' } },
  },
  {
    name: 'multi-stage: COPY --from a named stage and by index; unneeded stages skipped',
    dockerfile:
      `FROM ${Base} AS one\nRUN echo built > /artifact\nFROM ${Base} AS unused\nRUN exit 1\n` +
      `FROM ${Base}\nCOPY --from=one /artifact /from-name\nCOPY --from=0 /artifact /from-index\n`,
    expect: { 'from-name': { content: 'built\n' }, 'from-index': { content: 'built\n' } },
  },
  {
    name: 'FROM an earlier stage inherits its config and files',
    dockerfile:
      `FROM ${Base} AS base\nENV FROM_BASE=yes\nRUN echo base > /base.txt\nFROM base\n` +
      `RUN echo $FROM_BASE > /child.txt\n`,
    config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_BASE=yes'] },
    expect: { 'base.txt': { content: 'base\n' }, 'child.txt': { content: 'yes\n' } },
  },
  {
    name: 'RUN --mount bind (context, read-only), tmpfs and cache',
    files: { 'data/in.txt': 'input' },
    dockerfile:
      `FROM ${Base}\nRUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/in.txt > /copied ` +
      `&& (touch /mnt/data/x 2>/dev/null && echo writable || echo readonly) >> /copied\n` +
      `RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && ls /scratch > /tmpfs.txt\n` +
      `RUN --mount=type=cache,target=/cache echo v >> /cache/log && wc -l < /cache/log > /cache-count\n`,
    expect: {
      copied: { content: 'inputreadonly\n' },
      'tmpfs.txt': { content: 't\n' },
      'mnt/data': { absent: true },
      scratch: { absent: true },
      cache: { absent: true },
    },
  },
  {
    name: 'RUN --network=none sees only lo',
    dockerfile: `FROM ${Base}\nRUN --network=none ls /sys/class/net > /ifaces\n`,
    expect: { ifaces: { content: 'lo\n' } },
  },
  {
    name: 'ADD extracts a local tar (detected by content) and copies plain files',
    files: { 'plain.txt': 'p' },
    dockerfile: `FROM ${Base}\nADD rootfs.tar /unpacked/\nADD plain.txt /plain.txt\n`,
    expect: { 'unpacked/bin/busybox': { mode: 0o755 }, 'plain.txt': { content: 'p' } },
  },
  {
    name: '<Dockerfile>.dockerignore beside the Dockerfile wins over .dockerignore',
    files: { '.dockerignore': 'a.txt\n', 'Dockerfile.dockerignore': 'b.txt\n', 'a.txt': 'a', 'b.txt': 'b' },
    dockerfile: `FROM ${Base}\nCOPY . /c/\n`,
    expect: { 'c/a.txt': { content: 'a' }, 'c/b.txt': { absent: true } },
  },
  {
    name: 'COPY --link and ADD --chmod',
    files: { 'x.sh': 'echo x' },
    dockerfile: `FROM ${Base}\nCOPY --link x.sh /linked/x.sh\nADD --chmod=700 x.sh /added.sh\n`,
    expect: { 'linked/x.sh': { content: 'echo x' }, 'added.sh': { mode: 0o700 } },
  },
  {
    name: 'ONBUILD triggers of the base run in the child build',
    dockerfile: `FROM onbuild-parent:1\nRUN test -f /triggered\n`,
    expect: { triggered: {} },
  },
];

const root = storeWithBase();
// A parent image with ONBUILD for the trigger case, and the rootfs tar for the ADD case.
ok(
  tsbuild(
    ['build', '-q', '-t', 'onbuild-parent:1', context({ Dockerfile: `FROM ${Base}\nONBUILD RUN touch /triggered\n` })],
    { root },
  ),
);

for (const c of cases) {
  test(c.name, () => {
    const files = { ...(c.files ?? {}), Dockerfile: c.dockerfile };
    const ctx = context(files);
    if (c.dockerfile.includes('rootfs.tar'))
      copyFileSync(join(repo, 'fixtures', 'busybox', 'rootfs.tar'), join(ctx, 'rootfs.tar'));
    const out = tempDir('layout');
    const tag = 'case:1';
    ok(tsbuild(['build', '-t', tag, '-o', `type=oci,dest=${out},tar=false`, ...(c.args ?? []), ctx], { root }));
    const img = inspect(root, tag);
    for (const [k, v] of Object.entries(c.config ?? {}))
      assert.equal(img.ImageConfig.config?.[k] ?? null, v, `config ${k}`);
    if (c.author) assert.is(img.ImageConfig.author, c.author);
    if (c.expect) {
      const rootfs = umociRootfs(out, '1');
      for (const [path, e] of Object.entries(c.expect)) {
        const abs = join(rootfs, path);
        if (e.absent) {
          assert.not.ok(existsSync(abs) || isLink(abs), `${path} should be absent`);
          continue;
        }
        const st = lstatSync(abs);
        if (e.content !== undefined) assert.is(readFileSync(abs, 'utf8'), e.content, `${path} content`);
        if (e.mode !== undefined) assert.is((st.mode & 0o7777).toString(8), e.mode.toString(8), `${path} mode`);
        if (e.uid !== undefined) assert.is(st.uid, e.uid, `${path} uid`);
        if (e.gid !== undefined) assert.is(st.gid, e.gid, `${path} gid`);
        if (e.symlink !== undefined) assert.is(readlinkSync(abs), e.symlink, `${path} link`);
        if (e.dir) assert.ok(st.isDirectory(), `${path} is a dir`);
      }
      cleanup(rootfs.replace(/\/bundle\/rootfs$/, ''));
    }
    cleanup(ctx, out);
  });
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

test.after(() => cleanup(root));
test.run();
