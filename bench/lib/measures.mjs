// The measurements of issue 17 beyond the build workloads, in the harness's style: every repetition rotates the
// tools (A B C, B C A, …), each timed command is followed by a timed `sync` (each pays its own write-back), failures
// are recorded and counted as missing (NaN), and a tool that is not installed is reported as "not installed".
//
//   ci-push  cold build, then the first push into an empty local registry (Debian's docker-registry)
//   scale-*  no-op and one-change time and peak RSS against context size, Dockerfile length and parallel stages;
//            cold time against the base image's layer count
//   pull     `tsbuild pull` vs `skopeo copy docker://… oci:`, first (empty store) and repeated
//   run      `tsbuild run --rm IMG true` vs `podman run --rm` and `docker run --rm`, same busybox image
//
// Each measurement is a function (env) → result; report*(result) → markdown lines. env is what run.mjs shares:
//   { builders, runs, quick, work, repo, here, log, attemptWith(name, what, fn), prepareContext(name), bigArgs,
//     missing: { tool: program } }
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { sh, timed, median, min, max, fmtS, fmtMB, sleep, resetPeak, peakKB } from './util.mjs';
import { createBridge, missing as missingTool, runTag } from './builders.mjs';
import { SCALE, makeScaleContext, makeLayersBaseContext } from './scale.mjs';
import { lineChart } from './svg.mjs';

export const NEW_MEASURES = ['ci-push', 'scale-context', 'scale-steps', 'scale-stages', 'scale-layers', 'pull', 'run'];

const rotate = (xs, i) => xs.map((_, k) => xs[(k + i) % xs.length]);
const cell = (xs) => {
  const v = (xs ?? []).map((x) => x.ms).filter(Number.isFinite);
  return v.length ? `${fmtS(median(v))} [${fmtS(min(v))}–${fmtS(max(v))}]` : 'failed';
};
const med = (xs) => median((xs ?? []).map((x) => x.ms));
const peak = (xs) => max((xs ?? []).map((x) => x.rssKB));
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const ratio = (a, b) => med(a) / med(b);
const row = (...cells) => `| ${cells.join(' | ')} |`;
const pushOnly = (xs) => (xs ?? []).map((x) => ({ ms: x.pushMs }));

async function registry(repo) {
  const mod = join(repo, 'packages/testkit/dist/src/registry.js');
  const { startRegistry } = await import(mod);
  return startRegistry();
}

/** GET a manifest and HEAD each blob it names: the push really landed (a 2xx for every one). */
export async function checkPushed(host, name, tag) {
  const req = (method, path, headers = {}) =>
    new Promise((resolve, reject) => {
      const [h, port] = host.split(':');
      const r = http.request({ host: h, port: Number(port), path, method, headers, agent: false }, (res) => {
        const b = [];
        res.on('data', (d) => b.push(d));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(b).toString() }));
      });
      r.on('error', reject);
      r.end();
    });
  const accept = [
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
  ].join(', ');
  const m = await req('GET', `/v2/${name}/manifests/${tag}`, { Accept: accept });
  if (m.status !== 200) throw new Error(`registry ${host}: manifest ${name}:${tag} → HTTP ${m.status}`);
  const j = JSON.parse(m.body);
  const blobs = [j.config, ...(j.layers ?? [])];
  if (!j.config || !j.layers?.length) throw new Error(`registry ${host}: ${name}:${tag} is not an image manifest`);
  for (const b of blobs) {
    const h = await req('HEAD', `/v2/${name}/blobs/${b.digest}`);
    if (h.status !== 200) throw new Error(`registry ${host}: blob ${b.digest} of ${name}:${tag} → HTTP ${h.status}`);
  }
  return blobs.length;
}

// ---------------------------------------------------------------- 1. build + push for CI
export async function ciPush(env) {
  const { builders, runs, log, attemptWith } = env;
  // CI users keep the default compression: tsbuild-nocomp would push uncompressed layers, another artifact.
  const bs = builders.filter((b) => b.name !== 'tsbuild-nocomp' && b.buildPush);
  const out = { images: {}, commands: {} };
  for (const name of ['many-files', 'big-file']) {
    const ctx = await env.prepareContext(name);
    const args = name === 'big-file' ? env.bigArgs : [];
    const res = (out.images[name] = {});
    out.commands[name] = Object.fromEntries(
      bs.map((b) => [b.name, b.pushCommand(ctx.replace(env.repo + '/', ''), `127.0.0.1:PORT/bench/${name}:ci`, args)]),
    );
    for (let i = 0; i < runs; i++) {
      for (const b of rotate(bs, i)) {
        await b.flush();
        await sh('sync', []);
        await sleep(200);
        const reg = await registry(env.repo);
        try {
          const ref = `${reg.host}/bench/${name}:ci`;
          const r = await attemptWith(b.name, `ci-push ${name}`, async () => {
            const x = await b.buildPush(ctx, ref, args);
            await checkPushed(reg.host, `bench/${name}`, 'ci');
            return x;
          });
          (res[b.name] ??= []).push(r);
          log(
            `ci-push ${name} run ${i + 1}/${runs} ${b.name.padEnd(8)} build+push ${fmtS(r.ms)}s` +
              `${Number.isFinite(r.pushMs) ? ` (push ${fmtS(r.pushMs)}s)` : ''}  peak RSS ${fmtMB(r.rssKB)} MB`,
          );
        } finally {
          await reg.stop();
        }
      }
    }
  }
  out.builders = bs.map((b) => b.name);
  return out;
}

export function reportCiPush(r, missing) {
  const L = ['### Build + push for CI (`--only ci-push`)', ''];
  const cols = ['tsbuild', 'buildkit', 'buildah'];
  const label = { tsbuild: 'tsbuild', buildkit: 'BuildKit + docker push', buildah: 'buildah bud + push' };
  L.push(
    'Cold build, then the first push into an empty local registry (a fresh `docker-registry` per build); seconds, ' +
      'median [min–max]; the registry is checked to hold the manifest and every blob afterwards.',
    '',
  );
  L.push(
    `| image | | ${cols.map((c) => label[c]).join(' | ')} | tsbuild / BuildKit+push | tsbuild / Buildah |`,
    `|---|---|${cols.map(() => '---|').join('')}---|---|`,
  );
  for (const [img, res] of Object.entries(r.images)) {
    const c = (b, f) => (missing[b] ? 'not installed' : !r.builders.includes(b) ? 'not selected' : f(res[b]));
    L.push(
      row(
        img,
        'build + push',
        ...cols.map((b) => c(b, cell)),
        f2(ratio(res.tsbuild, res.buildkit)),
        f2(ratio(res.tsbuild, res.buildah)),
      ),
    );
    L.push(
      row(
        '',
        'of which push',
        ...cols.map((b) => c(b, (xs) => (b === 'tsbuild' ? '(one command)' : cell(pushOnly(xs))))),
        '',
        '',
      ),
    );
    L.push(`| | peak RSS, MB | ${cols.map((b) => c(b, (xs) => fmtMB(peak(xs)))).join(' | ')} | | |`);
  }
  L.push(
    '',
    "Commands (PORT: the fresh registry's):",
    '',
    '```',
    ...Object.values(r.commands).flatMap((c) => Object.values(c)),
    '```',
    '',
  );
  return L;
}

// ---------------------------------------------------------------- 2. how cost grows
export async function scale(env, dims) {
  const { builders, runs, quick, log, attemptWith } = env;
  // tsbuild and BuildKit (Buildah is 3–50× slower on these shapes and would dominate the run's time).
  const bs = builders.filter((b) => b.name === 'tsbuild' || b.name === 'buildkit');
  const out = { dims: {}, builders: bs.map((b) => b.name) };
  let reg = null;
  try {
    for (const dim of dims) {
      const spec = SCALE[dim];
      const values = env.scaleValues?.[dim] ?? (quick ? spec.quick : spec.full);
      const res = (out.dims[dim] = { values, phases: spec.phases, label: spec.label, data: {} });
      for (const n of values) {
        let from;
        if (dim === 'layers') {
          // The base: built once by tsbuild from busybox + n-1 COPY layers and pushed (untimed); every builder
          // then pulls these same bytes in its cold build.
          reg ??= await registry(env.repo);
          from = `${reg.host}/bench/layers-${n}:1`;
          const tsb = builders.find((b) => b.name === 'tsbuild');
          const root = join(env.work, 'scale-layers-store');
          rmSync(root, { recursive: true, force: true });
          await sh('cp', ['-a', tsb.template, root]);
          await sh(tsb.bin, ['build', '--progress=plain', '--push', '-t', from, makeLayersBaseContext(env.work, n)], {
            env: { TSBUILD_ROOT: root },
          });
          const m = JSON.parse((await sh(tsb.bin, ['inspect', from], { env: { TSBUILD_ROOT: root } })).stdout);
          if (m.Manifest.layers.length !== n)
            throw new Error(`scale-layers: base ${from} has ${m.Manifest.layers.length} layers, not ${n}`);
          rmSync(root, { recursive: true, force: true });
        }
        const { ctx, change } = await makeScaleContext(dim, n, {
          work: env.work,
          dataDir: join(env.here, 'data'),
          log,
          from,
        });
        const orig = change ? readFileSync(join(ctx, change)) : null;
        const setChange = (label) => {
          if (!change) return;
          writeFileSync(join(ctx, change), label ? Buffer.concat([orig, Buffer.from(`changed: ${label}\n`)]) : orig);
        };
        const tag = `bench/scale-${dim}:latest`;
        const d = (res.data[n] = {});
        for (let i = 0; i < runs; i++) {
          for (const b of rotate(bs, i)) {
            const r = (d[b.name] ??= Object.fromEntries(spec.phases.map((p) => [p, []])));
            setChange(null);
            await b.flush();
            await sh('sync', []);
            await sleep(200);
            const what = `scale-${dim} ${n}`;
            const cold = await attemptWith(b.name, `${what} cold`, () => b.build(ctx, tag, []));
            r.cold.push(cold);
            let msg = `cold ${fmtS(cold.ms)}s`;
            if (spec.phases.includes('noop') && !Number.isFinite(cold.ms)) {
              // A rebuild after a failed cold build is not a no-op: both phases count as missing for this run.
              r.noop.push({ ms: NaN, rssKB: NaN });
              r.change.push({ ms: NaN, rssKB: NaN });
              msg += '  (no-op and one-change skipped: the cold build failed)';
            } else if (spec.phases.includes('noop')) {
              const noop = await attemptWith(b.name, `${what} no-op`, () => b.build(ctx, tag, []));
              setChange(`run ${i} ${b.name}`);
              const ch = await attemptWith(b.name, `${what} one-change`, () => b.build(ctx, tag, []));
              setChange(null);
              r.noop.push(noop);
              r.change.push(ch);
              msg += `  no-op ${fmtS(noop.ms)}s  one-change ${fmtS(ch.ms)}s`;
            }
            log(
              `scale-${dim} ${n} run ${i + 1}/${runs} ${b.name.padEnd(8)} ${msg}  peak RSS ${fmtMB(
                max(
                  Object.values(r)
                    .flat()
                    .slice(-3)
                    .map((x) => x.rssKB),
                ),
              )} MB`,
            );
          }
        }
      }
    }
  } finally {
    await reg?.stop();
  }
  return out;
}

const PHASE = { cold: 'cold', noop: 'no-op', change: 'one-change' };
// One colour per phase, solid for tsbuild and dashed for BuildKit, so that the two builders' lines pair up.
const PHASE_COLOR = { cold: 0, noop: 2, change: 1 };

/** Markdown for the scaling results, and the SVG charts written into chartsDir (linked relative to the report). */
export function reportScale(r, { chartsDir, chartsRel, missing }) {
  const L = [
    '### How cost grows (`--only scale`, or `scale-context`, `scale-steps`, `scale-stages`, `scale-layers`)',
    '',
  ];
  L.push(
    'Seconds, median [min–max]; peak RSS in MB (the largest process, as for the build workloads). ' +
      'The no-op and one-change lines should grow with what changed, not with the size of the context.',
    '',
  );
  if (missing.buildkit) L.push('BuildKit: not installed (dockerd/docker missing); tsbuild alone.', '');
  mkdirSync(chartsDir, { recursive: true });
  for (const [dim, res] of Object.entries(r.dims)) {
    L.push(`#### ${res.label}`, '');
    const phases = res.phases;
    L.push(
      row(res.label, 'builder', ...phases.map((p) => PHASE[p]), ...phases.map((p) => `peak RSS ${PHASE[p]}`)),
      `|---|---|${phases.map(() => '---|').join('')}${phases.map(() => '---|').join('')}`,
    );
    for (const n of res.values) {
      for (const b of r.builders) {
        const x = res.data[n]?.[b];
        L.push(row(n, b, ...phases.map((p) => cell(x?.[p])), ...phases.map((p) => fmtMB(peak(x?.[p])))));
      }
      if (r.builders.includes('buildkit')) {
        const x = res.data[n] ?? {};
        L.push(
          row(
            n,
            'tsbuild / BuildKit',
            ...phases.map((p) => f2(ratio(x.tsbuild?.[p], x.buildkit?.[p]))),
            ...phases.map(() => ''),
          ),
        );
      }
    }
    L.push('');
    // Charts: time (a line per builder and phase), and tsbuild's peak RSS (a line per phase).
    const shown = dim === 'layers' ? ['cold'] : phases.filter((p) => p !== 'cold' || dim === 'stages');
    const series = [];
    for (const b of r.builders) {
      for (const p of shown) {
        series.push({
          name: `${b} ${PHASE[p]}`,
          dashed: b !== 'tsbuild',
          color: PHASE_COLOR[p],
          points: res.values.map((n) => [n, med(res.data[n]?.[b]?.[p]) / 1000]),
        });
      }
    }
    const file = `scale-${dim}-time.svg`;
    writeFileSync(
      join(chartsDir, file),
      lineChart({
        title: `Time against ${res.label}`,
        xLabel: res.label,
        yLabel: 'seconds (median)',
        logX: true,
        series,
      }),
    );
    const rssSeries = r.builders.flatMap((b) =>
      shown.map((p) => ({
        name: `${b} ${PHASE[p]}`,
        dashed: b !== 'tsbuild',
        color: PHASE_COLOR[p],
        points: res.values.map((n) => [n, peak(res.data[n]?.[b]?.[p]) / 1024]),
      })),
    );
    const rfile = `scale-${dim}-rss.svg`;
    writeFileSync(
      join(chartsDir, rfile),
      lineChart({
        title: `Peak RSS against ${res.label}`,
        xLabel: res.label,
        yLabel: 'peak RSS, MB',
        logX: true,
        series: rssSeries,
      }),
    );
    L.push(
      `![time against ${res.label}](${chartsRel}/${file}) ![peak RSS against ${res.label}](${chartsRel}/${rfile})`,
      '',
    );
  }
  L.push(
    'Workloads (generated by `bench/lib/scale.mjs` into bench/work/ctx, the file trees cached in bench/data): ' +
      "context: N files of ~1 KiB under node_modules/ COPY'd, then `COPY src/` and a RUN reading src/index.js " +
      '(the file the one-change phase edits); ' +
      'steps: WORKDIR, then RUN and ENV alternately, then `COPY late.txt` and a RUN reading it (edited); ' +
      'stages: N stages of COPY + `RUN sleep 0.2 && … md5sum`, a final stage that `COPY --from`s each ' +
      "(in1.txt, one stage's input, edited); " +
      'layers: a base of busybox + N-1 one-file COPY layers, built and pushed to a local registry by tsbuild, ' +
      'then `FROM` it + one RUN, built cold (the base pulled and unpacked by each builder; the busybox layer is ' +
      "already in every store, as each holds the bench's busybox base). " +
      "BuildKit's RSS is the daemons' (dockerd and containerd) as for the build workloads.",
    '',
  );
  return L;
}

// ---------------------------------------------------------------- 3. pull
export async function pull(env) {
  const { builders, runs, log, attemptWith, missing } = env;
  const tsb = builders.find((b) => b.name === 'tsbuild');
  const tools = ['tsbuild', ...(missing.skopeo ? [] : ['skopeo'])];
  const out = { images: {}, tools };
  const reg = await registry(env.repo);
  const dir = join(env.work, 'pull');
  try {
    // The images: the many-files and big-file workloads, built by tsbuild and pushed once (untimed).
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const src = join(dir, 'src-store');
    await sh('cp', ['-a', tsb.template, src]);
    for (const name of ['many-files', 'big-file']) {
      const ctx = await env.prepareContext(name);
      const ref = `${reg.host}/bench/${name}:1`;
      const args = (name === 'big-file' ? env.bigArgs : []).flatMap((a) => ['--build-arg', a]);
      await sh(tsb.bin, ['build', '--progress=plain', '--push', '-t', ref, ...args, ctx], {
        env: { TSBUILD_ROOT: src },
      });
      const blobs = await checkPushed(reg.host, `bench/${name}`, '1');
      log(`pull: ${ref} pushed (${blobs} blobs)`);
      const run = {
        tsbuild: (store) =>
          timed(tsb.bin, ['pull', ref], { env: { TSBUILD_ROOT: store } }).then((r) => {
            if (!/Digest: sha256:/.test(r.stdout))
              throw new Error(`tsbuild pull printed no digest:\n${r.stdout}${r.stderr}`);
            return r;
          }),
        skopeo: (store) =>
          timed('skopeo', [
            '--insecure-policy',
            'copy',
            '-q',
            '--src-tls-verify=false',
            `docker://${ref}`,
            `oci:${store}:bench/${name}:1`,
          ]).then((r) => {
            if (!existsSync(join(store, 'index.json'))) throw new Error(`skopeo copy left no ${store}/index.json`);
            return r;
          }),
      };
      const res = (out.images[name] = {});
      for (let i = 0; i < runs; i++) {
        for (const t of rotate(tools, i)) {
          const store = join(dir, `dest-${t}`);
          rmSync(store, { recursive: true, force: true });
          const r = (res[t] ??= { first: [], repeat: [] });
          const first = await attemptWith(t, `pull ${name} first`, () => run[t](store));
          const repeat = await attemptWith(t, `pull ${name} repeat`, () => run[t](store));
          r.first.push(first);
          r.repeat.push(repeat);
          rmSync(store, { recursive: true, force: true });
          log(
            `pull ${name} run ${i + 1}/${runs} ${t.padEnd(8)} first ${fmtS(first.ms)}s  repeat ${fmtS(repeat.ms)}s` +
              `  peak RSS ${fmtMB(Math.max(first.rssKB, repeat.rssKB))} MB`,
          );
        }
      }
    }
  } finally {
    await reg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export function reportPull(r, missing) {
  const L = ['### Pull (`--only pull`)', ''];
  L.push(
    '`tsbuild pull REF` into an empty store (first), then again (repeat), against ' +
      '`skopeo copy docker://REF oci:DIR:TAG` into an empty OCI layout, then again. ' +
      'The images are the many-files and big-file workloads built by tsbuild and pushed once to a local ' +
      '`docker-registry`. Seconds, median [min–max], each followed by a timed `sync`.',
    '',
  );
  L.push(
    '| image | phase | tsbuild pull | skopeo copy | tsbuild / skopeo | peak RSS tsbuild / skopeo, MB |',
    '|---|---|---|---|---|---|',
  );
  for (const [img, res] of Object.entries(r.images)) {
    for (const p of ['first', 'repeat']) {
      const sk = missing.skopeo ? 'not installed' : cell(res.skopeo?.[p]);
      L.push(
        row(
          p === 'first' ? img : '',
          p,
          cell(res.tsbuild?.[p]),
          sk,
          f2(ratio(res.tsbuild?.[p], res.skopeo?.[p])),
          `${fmtMB(peak(res.tsbuild?.[p]))} / ${missing.skopeo ? '–' : fmtMB(peak(res.skopeo?.[p]))}`,
        ),
      );
    }
  }
  L.push('');
  return L;
}

// ---------------------------------------------------------------- 4. run --rm true
/** podman with storage, run state and network config of its own (it never touches the host's podman setup). */
function podmanPeer(work, repo) {
  const dir = join(work, 'podman');
  const tmpfsRun = /\stmpfs\s/.test(
    readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[1] === '/run') ?? '',
  );
  const runroot = `${tmpfsRun ? '/run' : '/dev/shm'}/tsb-bench-podman-${runTag(work)}`;
  const g = [
    '--root',
    join(dir, 'storage'),
    '--runroot',
    runroot,
    '--tmpdir',
    join(runroot, 'tmp'),
    '--storage-driver',
    'overlay',
    // No systemd or journald here: cgroupfs and a file for events.
    '--cgroup-manager',
    'cgroupfs',
    '--events-backend',
    'file',
    '--network-config-dir',
    join(dir, 'net'),
  ];
  // As root, podman asks runc for RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 4194304, above this machine's hard
  // limits (runc then fails with EPERM): pass the limits a process has here instead (NPROC capped at pid_max,
  // the most conmon's child may have).
  const lim = readFileSync('/proc/self/limits', 'utf8');
  const hard = (re) => Number(re.exec(lim)?.[1]);
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const nofile = hard(/Max open files\s+\S+\s+(\d+)/) || 1024;
  const nproc = Math.min(hard(/Max processes\s+\S+\s+(\d+)/) || 4096, pidMax);
  const ulimits = ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
  let bridge = null;
  const podman = (args, o) => sh('podman', [...g, ...args], o);
  return {
    async setup() {
      await podman(['rm', '-af'], { ok: true });
      await sh('sh', ['-c', `grep -o '${join(dir, 'storage')}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`], {
        ok: true,
      });
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(dir, 'net'), { recursive: true });
      // podman's default network is a bridge with masquerading and firewall rules on the host; the bench gives it
      // a bridge of its own instead (as dockerd gets), with no NAT and no iptables rule. No traffic is sent.
      bridge = await createBridge('benchp');
      const [gw] = bridge.address.split('/');
      writeFileSync(
        join(dir, 'net', 'podman.conflist'),
        JSON.stringify(
          {
            cniVersion: '0.4.0',
            name: 'podman',
            plugins: [
              {
                type: 'bridge',
                bridge: bridge.name,
                isGateway: false,
                ipMasq: false,
                hairpinMode: false,
                ipam: {
                  type: 'host-local',
                  dataDir: join(dir, 'ipam'),
                  routes: [],
                  ranges: [[{ subnet: gw.replace(/\.1$/, '.0/24'), gateway: gw }]],
                },
              },
            ],
          },
          null,
          1,
        ),
      );
      // The same busybox base, built as the other builders build it (FROM scratch + ADD rootfs.tar).
      await podman([
        'build',
        '-q',
        '-t',
        'bench/busybox:base',
        '-f',
        join(repo, 'fixtures/busybox/Dockerfile'),
        join(repo, 'fixtures/busybox'),
      ]);
    },
    run: (img, extra) => timed('podman', [...g, 'run', '--rm', ...ulimits, ...extra, img, 'true']),
    command: (extra) =>
      'podman --root $PROOT --runroot … --cgroup-manager cgroupfs --events-backend file --network-config-dir $PNET ' +
      `run --rm ${ulimits.join(' ')}${extra.map((a) => ` ${a}`).join('')} bench/busybox:base true`,
    version: async () => (await sh('podman', ['--version'])).stdout.trim(),
    async teardown() {
      await podman(['rm', '-af'], { ok: true });
      await sh('sh', ['-c', `grep -o '${join(dir, 'storage')}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`], {
        ok: true,
      });
      bridge?.remove();
      bridge = null;
      rmSync(runroot, { recursive: true, force: true });
    },
  };
}

export async function runStart(env) {
  const { builders, runs, quick, log, attemptWith, missing } = env;
  const tsb = builders.find((b) => b.name === 'tsbuild');
  const bk = builders.find((b) => b.name === 'buildkit');
  const img = 'bench/busybox:base';
  const root = join(env.work, 'run-store');
  rmSync(root, { recursive: true, force: true });
  await sh('cp', ['-a', tsb.template, root]);
  const pod = missing.podman ? null : podmanPeer(env.work, env.repo);
  const peers = {
    tsbuild: {
      run: (x) => timed(tsb.bin, ['run', '--rm', ...x, img, 'true'], { env: { TSBUILD_ROOT: root } }),
      command: (x) =>
        `TSBUILD_ROOT=$ROOT packages/builder/bin/tsbuild run --rm${x.map((a) => ` ${a}`).join('')} ${img} true`,
    },
  };
  if (pod) peers.podman = { run: (x) => pod.run(img, x), command: pod.command };
  if (bk) {
    // The client's peak RSS and the daemons' (VmHWM reset before each run), as for BuildKit's builds.
    peers.docker = {
      run: async (x) => {
        const pids = bk.daemonPids();
        pids.forEach(resetPeak);
        const r = await timed('/usr/bin/docker', ['run', '--rm', ...x, img, 'true'], {
          env: { DOCKER_HOST: `unix://${join(env.work, 'docker', 'docker.sock')}` },
        });
        return { ...r, rssKB: Math.max(r.rssKB, ...pids.map(peakKB)) };
      },
      command: (x) => `DOCKER_HOST=unix://$SOCK /usr/bin/docker run --rm${x.map((a) => ` ${a}`).join('')} ${img} true`,
    };
  }
  const names = Object.keys(peers);
  const nets = { default: [], none: ['--network', 'none'] };
  const samples = runs * (quick ? 3 : 5); // a start-up is short: several samples per run
  const out = { nets: {}, peers: names, samples, commands: {} };
  try {
    // A podman that fails to set up is listed under the failures; its samples then fail and count as missing.
    if (pod) await attemptWith('podman', 'setup (its store and the busybox base)', () => pod.setup().then(() => ({})));
    for (const [net, x] of Object.entries(nets)) {
      out.commands[net] = names.map((p) => peers[p].command(x));
      // Warm-up, untimed: a failure here is logged, and the timed samples record that peer's failures as usual.
      for (const p of names)
        await peers[p].run(x).catch((e) => log(`run: warm-up of ${p} failed: ${e.message.split('\n')[1]}`));
      const res = (out.nets[net] = Object.fromEntries(names.map((p) => [p, []])));
      for (let i = 0; i < samples; i++) {
        for (const p of rotate(names, i))
          res[p].push(await attemptWith(p, `run --rm (${net} network)`, () => peers[p].run(x)));
      }
      log(
        `run --rm true, ${net} network, ${samples} samples: ` +
          names.map((p) => `${p} ${fmtS(med(res[p]))}s`).join('  '),
      );
    }
    out.versions = { podman: pod ? await pod.version() : null };
  } finally {
    await pod?.teardown();
    rmSync(root, { recursive: true, force: true });
  }
  return out;
}

export function reportRun(r, missing) {
  const L = ['### Run: per-container start-up (`--only run`)', ''];
  L.push(
    `\`run --rm bench/busybox:base true\`, the same busybox image in each; ${r.samples} samples per cell, ` +
      'rotated; seconds, median [min–max]. ' +
      "Default network: tsbuild's private network (slirp4netns), docker's bridge (on the bench's own bridge, " +
      "no iptables), podman's CNI bridge (on a bench bridge of its own, no NAT). " +
      "Peak RSS: tsbuild and podman: `/usr/bin/time` of the CLI (podman's conmon detaches and is not counted); " +
      'docker: the largest of the client and the daemons (dockerd, containerd; not the per-container shim).',
    '',
  );
  const cols = ['tsbuild', 'podman', 'docker'];
  L.push(
    `| network | ${cols.join(' | ')} | tsbuild / podman | tsbuild / docker |`,
    `|---|${cols.map(() => '---|').join('')}---|---|`,
  );
  const c = (p, f, xs) =>
    p === 'docker' && missing.buildkit
      ? 'not installed'
      : missing[p]
        ? 'not installed'
        : !r.peers.includes(p)
          ? 'not selected'
          : f(xs);
  for (const [net, res] of Object.entries(r.nets)) {
    L.push(
      row(
        net,
        ...cols.map((p) => c(p, cell, res[p])),
        f2(ratio(res.tsbuild, res.podman)),
        f2(ratio(res.tsbuild, res.docker)),
      ),
    );
    L.push(`| ${net}: peak RSS, MB | ${cols.map((p) => c(p, (xs) => fmtMB(peak(xs)), res[p])).join(' | ')} | | |`);
  }
  L.push('', '```', ...Object.values(r.commands).flat(), '```', '');
  return L;
}

export { missingTool };
