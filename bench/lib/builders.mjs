// The three builders under test, behind one interface:
//   setup(bases)  start what the builder needs and import the base images (untimed)
//   flush()       empty the build cache, keep the base images (untimed; see FLUSH below)
//   build(ctx, tag, buildArgs) → { ms, rssKB, out }   one timed build
//   size(tag)     final image size in bytes (each builder's own notion; see SIZE)
//   buildPush(ctx, ref, buildArgs) → { ms, rssKB, pushMs?, out }   a build, then its push to ref (a registry on
//                 127.0.0.1, plain HTTP), the way a CI job does it with that tool (see PUSH)
//   teardown()
// missing(name) says which program a builder needs that is not installed (null when all are there).
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, readFileSync } from 'node:fs';
import { sh, timed, resetPeak, peakKB, childrenOf, sleep, which } from './util.mjs';

export const FLUSH = {
  tsbuild:
    'a fresh store: `rm -rf $ROOT && cp -a $TEMPLATE $ROOT`, where $TEMPLATE is a store in which only the base ' +
    'images were built',
  buildkit:
    '`docker rmi -f` of every image but the bases, then `docker builder prune -af` (BuildKit cache incl. context ' +
    'snapshots)',
  buildah:
    '`buildah rm --all`, `buildah rmi -f` of every tagged image but the bases, then `buildah rmi --prune` (removes ' +
    'the untagged intermediate images that `--layers` uses as its cache)',
};
export const SIZE = {
  tsbuild: 'manifest: config + layers as stored (uncompressed: compression waits for push or export)',
  buildkit: '`docker image inspect .Size` (uncompressed)',
  buildah: '`buildah images --json` size (uncompressed, as printed: 3 significant digits)',
};

export const PUSH = {
  tsbuild:
    '`tsbuild build --push -t REF CTX`: one command, as CI runs it (each layer starts up as soon as the build has ' +
    'written it; config and manifest after the build)',
  buildkit: '`docker build -t REF CTX` then `docker push REF` (BuildKit in dockerd; the layers are compressed at push)',
  buildah: '`buildah bud --layers -t REF CTX` then `buildah push --tls-verify=false REF`',
};

/**
 * The first program a builder or peer needs that is not on this machine, or null. BENCH_WITHOUT=podman,skopeo
 * treats those as not installed, to see the report a machine without them gets.
 */
export function missing(name) {
  const needs = { buildkit: ['dockerd', 'docker'], buildah: ['buildah'], podman: ['podman'], skopeo: ['skopeo'] };
  const need = needs[name] ?? [];
  if ((process.env.BENCH_WITHOUT ?? '').split(',').includes(name)) return need[0] ?? name;
  return need.find((c) => !which(c)) ?? null;
}

// tsbuild compresses every new layer during the build; BuildKit in dockerd's image store does not (it compresses
// at push). `tsbuild-nocomp` (`--compression none`) is tsbuild doing the same work as BuildKit, reported beside it.
export function tsbuildBuilder({ repo, work, head, name = 'tsbuild', extra = [] }) {
  const template = join(work, name, 'template');
  const root = join(work, name, 'root');
  // The package's bin (a launcher script in front of node), run as users run `tsbuild`.
  const bin = join(repo, 'packages/builder/bin/tsbuild');
  const env = { TSBUILD_ROOT: root };
  const cli = (args, o = {}) => sh(bin, args, { env, ...o });
  return {
    name,
    bin,
    /** A store holding only the base images (made by setup), for measurements that need their own copy. */
    template,
    command: (ctx, tag, args) =>
      `TSBUILD_ROOT=$ROOT packages/builder/bin/tsbuild build --progress=plain${extra.map((a) => ` ${a}`).join('')} ` +
      `-t ${tag}${args.map((a) => ` --build-arg ${a}`).join('')} ${ctx}`,
    async version() {
      return head;
    },
    async setup(bases) {
      rmSync(join(work, name), { recursive: true, force: true });
      mkdirSync(template, { recursive: true });
      for (const b of bases)
        await sh(bin, ['build', '--progress=plain', '-t', b.tag, '-f', b.dockerfile, b.ctx], {
          env: { TSBUILD_ROOT: template },
        });
    },
    async flush() {
      rmSync(root, { recursive: true, force: true });
      await sh('cp', ['-a', template, root]);
    },
    async build(ctx, tag, buildArgs = []) {
      const r = await timed(
        bin,
        ['build', '--progress=plain', ...extra, '-t', tag, ...buildArgs.flatMap((a) => ['--build-arg', a]), ctx],
        { env },
      );
      return { ms: r.ms, rssKB: r.rssKB, out: r.stderr + r.stdout };
    },
    pushCommand: (ctx, ref, args) =>
      `TSBUILD_ROOT=$ROOT packages/builder/bin/tsbuild build --progress=plain${extra.map((a) => ` ${a}`).join('')}` +
      ` --push -t ${ref}${args.map((a) => ` --build-arg ${a}`).join('')} ${ctx}`,
    async buildPush(ctx, ref, buildArgs = []) {
      const bargs = buildArgs.flatMap((a) => ['--build-arg', a]);
      const r = await timed(bin, ['build', '--progress=plain', ...extra, '--push', '-t', ref, ...bargs, ctx], { env });
      return { ms: r.ms, rssKB: r.rssKB, out: r.stderr + r.stdout };
    },
    async size(tag) {
      const j = JSON.parse((await cli(['inspect', tag])).stdout);
      return j.Manifest.config.size + j.Manifest.layers.reduce((a, l) => a + l.size, 0);
    },
    async teardown() {},
  };
}

// The bridge helper the test suite's private dockerd uses too (one way to make and remove it), from the
// compiled testkit: the harness runs after `pnpm run build`.
export async function createBridge(tag = 'bench') {
  const mod = new URL('../../packages/testkit/dist/src/bridge.js', import.meta.url);
  const { createBridge: create } = await import(mod.href).catch((e) => {
    throw new Error(`bench: ${mod.pathname} is missing (run \`pnpm run build\` first): ${e.message}`);
  });
  return create(tag);
}

/**
 * A short tag of the bench's work directory, for the run-state directories outside it (dockerd's exec-root, the
 * buildah and podman run roots): two checkouts running the bench at once must not share one. dockerd reuses a live
 * containerd it finds in its exec-root, so a shared one would tie two daemons' builds and teardowns together.
 */
export function runTag(work) {
  return createHash('sha256').update(work).digest('hex').slice(0, 8);
}

// The same help tsbuild gets: its per-run sandbox state lives on a tmpfs (/run if it is one, else /dev/shm), so
// dockerd's exec-root (containerd's shim and runc state for every RUN step) goes on the same kind of tmpfs.
const tmpfsRun = (() => {
  try {
    return /\stmpfs\s/.test(
      readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[1] === '/run') ?? '',
    );
  } catch {
    return false;
  }
})();

export function buildkitBuilder({ work }) {
  const dir = join(work, 'docker');
  const sock = join(dir, 'docker.sock');
  const execRoot = `${tmpfsRun ? '/run' : '/dev/shm'}/tsb-bench-docker-${runTag(work)}`;
  const env = { DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '1' };
  const docker = (args, o = {}) => sh('/usr/bin/docker', args, { env, ...o });
  let daemon = null,
    bases = [],
    bridge = null;
  const daemonPids = () => (daemon ? [daemon.pid, ...childrenOf(daemon.pid)] : []); // dockerd + its containerd
  return {
    name: 'buildkit',
    command: (ctx, tag, args) =>
      `DOCKER_BUILDKIT=1 DOCKER_HOST=unix://$SOCK /usr/bin/docker build --progress=plain -t ` +
      `${tag}${args.map((a) => ` --build-arg ${a}`).join('')} ${ctx}`,
    async version() {
      return (
        await docker(['version', '-f', 'client {{.Client.Version}}, daemon {{.Server.Version}}'], { ok: true })
      ).stdout.trim();
    },
    async setup(bs) {
      bases = bs.map((b) => b.tag);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(dir, 'data', 'overlay2'), { recursive: true });
      // tsbuild marks its scratch dir with ext4's top-directory flag (new subdirectories spread over block groups):
      // the daemon's layer dir gets the same, where the filesystem supports it.
      await sh('chattr', ['+T', join(dir, 'data', 'overlay2')], { ok: true });
      const { spawn } = await import('node:child_process');
      const { openSync } = await import('node:fs');
      const log = openSync(join(dir, 'dockerd.log'), 'a');
      // A bridge of our own (RUN steps get a veth on it, as with docker0), so that another dockerd on this
      // machine creating or deleting docker0 cannot break our builds, and ours never touches docker0.
      // No traffic is sent over it.
      bridge = await createBridge();
      daemon = spawn(
        'dockerd',
        [
          '--data-root',
          join(dir, 'data'),
          '--exec-root',
          execRoot,
          '-H',
          `unix://${sock}`,
          '--pidfile',
          join(dir, 'dockerd.pid'),
          '--iptables=false',
          '--ip-masq=false',
          '--ip-forward=false',
          '--bridge',
          bridge.name,
        ],
        { stdio: ['ignore', log, log] },
      );
      for (let i = 0; ; i++) {
        if ((await docker(['version'], { ok: true })).code === 0) break;
        if (i > 150 || daemon.exitCode !== null)
          throw new Error(`dockerd did not start; see ${join(dir, 'dockerd.log')}`);
        await sleep(200);
      }
      for (const b of bs) await docker(['build', '--progress=plain', '-t', b.tag, '-f', b.dockerfile, b.ctx]);
    },
    async flush() {
      await docker(['container', 'prune', '-f'], { ok: true });
      const imgs = (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout
        .split('\n')
        .filter(Boolean);
      const drop = imgs.filter((i) => !bases.includes(i) && !bases.includes(i.replace(/^docker\.io\//, '')));
      if (drop.length) await docker(['rmi', '-f', ...drop], { ok: true });
      await docker(['image', 'prune', '-f'], { ok: true });
      await docker(['builder', 'prune', '-af']);
    },
    async build(ctx, tag, buildArgs = []) {
      const pids = daemonPids();
      pids.forEach(resetPeak);
      const r = await timed(
        '/usr/bin/docker',
        ['build', '--progress=plain', '-t', tag, ...buildArgs.flatMap((a) => ['--build-arg', a]), ctx],
        { env },
      );
      const daemonKB = Math.max(...pids.map(peakKB));
      return { ms: r.ms, rssKB: Math.max(r.rssKB, daemonKB), daemonKB, clientKB: r.rssKB, out: r.stderr + r.stdout };
    },
    pushCommand: (ctx, ref, args) =>
      `DOCKER_BUILDKIT=1 DOCKER_HOST=unix://$SOCK /usr/bin/docker build --progress=plain -t ${ref}` +
      `${args.map((a) => ` --build-arg ${a}`).join('')} ${ctx} && DOCKER_HOST=unix://$SOCK /usr/bin/docker push ${ref}`,
    async buildPush(ctx, ref, buildArgs = []) {
      // dockerd treats 127.0.0.0/8 as an insecure (plain HTTP) registry by default.
      const pids = daemonPids();
      pids.forEach(resetPeak);
      const bargs = buildArgs.flatMap((a) => ['--build-arg', a]);
      const b = await timed('/usr/bin/docker', ['build', '--progress=plain', '-t', ref, ...bargs, ctx], { env });
      const p = await timed('/usr/bin/docker', ['push', ref], { env });
      const daemonKB = Math.max(...pids.map(peakKB));
      const out = b.stderr + b.stdout + p.stderr + p.stdout;
      return { ms: b.ms + p.ms, pushMs: p.ms, rssKB: Math.max(b.rssKB, p.rssKB, daemonKB), daemonKB, out };
    },
    /** The daemons' pids (dockerd and its containerd), for peak-RSS readings by other measurements. */
    daemonPids,
    docker,
    async size(tag) {
      return Number((await docker(['image', 'inspect', '-f', '{{.Size}}', tag])).stdout.trim());
    },
    async teardown() {
      if (daemon && daemon.exitCode === null) {
        daemon.kill('SIGTERM');
        for (let i = 0; i < 100 && daemon.exitCode === null; i++) await sleep(200);
        if (daemon.exitCode === null) daemon.kill('SIGKILL');
      }
      daemon = null;
      bridge?.remove();
      bridge = null;
    },
  };
}

export function buildahBuilder({ work }) {
  const dir = join(work, 'buildah');
  const runroot = `/run/tsb-bench-buildah-${runTag(work)}`;
  const g = ['--root', join(dir, 'storage'), '--runroot', runroot, '--storage-driver', 'overlay'];
  const buildah = (args, o = {}) => sh('buildah', [...g, ...args], o);
  let bases = [];
  const norm = (t) => t.replace(/^localhost\//, '');
  return {
    name: 'buildah',
    command: (ctx, tag, args) =>
      'buildah --root $BROOT --runroot $BRUN --storage-driver overlay bud --layers --pull=never ' +
      `-t ${tag}${args.map((a) => ` --build-arg ${a}`).join('')} ${ctx}`,
    async version() {
      return (await sh('buildah', ['--version'])).stdout.trim();
    },
    async setup(bs) {
      bases = bs.map((b) => b.tag);
      // An earlier interrupted run may have left overlay mounts under the storage: unmount them first.
      await buildah(['rm', '--all'], { ok: true });
      await sh('sh', ['-c', `grep -o '${join(dir, 'storage')}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`], {
        ok: true,
      });
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      for (const b of bs) await buildah(['bud', '--layers', '-t', b.tag, '-f', b.dockerfile, b.ctx]);
    },
    async flush() {
      await buildah(['rm', '--all'], { ok: true });
      const imgs = JSON.parse((await buildah(['images', '--json'])).stdout || '[]');
      const drop = imgs.flatMap((i) => i.names || []).filter((n) => !bases.includes(norm(n)));
      if (drop.length) await buildah(['rmi', '-f', ...drop], { ok: true });
      await buildah(['rmi', '--prune'], { ok: true });
    },
    async build(ctx, tag, buildArgs = []) {
      const r = await timed('buildah', [
        ...g,
        'bud',
        '--layers',
        '--pull=never',
        '-t',
        tag,
        ...buildArgs.flatMap((a) => ['--build-arg', a]),
        ctx,
      ]);
      return { ms: r.ms, rssKB: r.rssKB, out: r.stderr + r.stdout };
    },
    pushCommand: (ctx, ref, args) =>
      'buildah --root $BROOT --runroot $BRUN --storage-driver overlay bud --layers --pull=never ' +
      `-t ${ref}${args.map((a) => ` --build-arg ${a}`).join('')} ${ctx} && ` +
      `buildah --root $BROOT … push --tls-verify=false ${ref}`,
    async buildPush(ctx, ref, buildArgs = []) {
      const bargs = buildArgs.flatMap((a) => ['--build-arg', a]);
      const b = await timed('buildah', [...g, 'bud', '--layers', '--pull=never', '-t', ref, ...bargs, ctx]);
      const p = await timed('buildah', [...g, 'push', '--tls-verify=false', ref]);
      const out = b.stderr + b.stdout + p.stderr + p.stdout;
      return { ms: b.ms + p.ms, pushMs: p.ms, rssKB: Math.max(b.rssKB, p.rssKB), out };
    },
    async size(tag) {
      const imgs = JSON.parse((await buildah(['images', '--json'])).stdout || '[]');
      const i = imgs.find((x) => (x.names || []).some((n) => norm(n) === tag || n === `localhost/${tag}`));
      const m = i && /^([\d.]+)\s*([kKMG]?B)$/.exec(String(i.size).trim());
      return m ? Number(m[1]) * { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9 }[m[2]] : NaN;
    },
    async teardown() {
      await buildah(['rm', '--all'], { ok: true });
      await sh('sh', ['-c', `grep -o '${join(dir, 'storage')}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`], {
        ok: true,
      });
    },
  };
}
