#!/usr/bin/env node
// Records BuildKit's result for each differential case (buildkit.json next to its case.json), or with
// --live reports where the recording is stale. Needs root, Debian's docker.io (dockerd 20.10) and
// `pnpm run build` first (it uses the compiled helpers in test/dist).
//
//   node test/differential/record.mjs [--live] [CASE...]
//
// A private dockerd (packages/testkit's startDockerd: its own bridge, data root and cgroup parent) is
// started for the run and stopped after it. The base image both builders start from is
// fixtures/busybox built by BuildKit from its Dockerfile, as tsbuild's tests build it (ADD rootfs.tar).
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerd } from '@tsbuild/testkit';
import { baseTree, diffRecords, dockerBuilder, exec, listCases, recordCase } from '../dist/helpers/differential.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const rootfs = join(repo, 'fixtures', 'busybox', 'rootfs.tar');
const args = process.argv.slice(2);
const live = args.includes('--live');
const only = args.filter((a) => !a.startsWith('--'));

const cases = listCases(join(here, 'cases')).filter((c) => only.length === 0 || only.includes(c.name));
if (only.length && cases.length !== only.length) {
  console.error(`no such case: ${only.filter((n) => !cases.some((c) => c.name === n)).join(', ')}`);
  process.exit(2);
}
const mk = await exec('bash', [join(repo, 'fixtures', 'busybox', 'make-rootfs.sh')]);
if (mk.code !== 0) throw new Error(mk.stderr);

const work = join('/tmp', `tsbuild-differential-${process.pid}`);
mkdirSync(work, { recursive: true });
const daemon = await startDockerd(join(work, 'd'), { args: ['--storage-driver', 'vfs'] });
if (typeof daemon === 'string') {
  console.error(`cannot start a private dockerd: ${daemon}`);
  process.exit(1);
}
let stale = 0;
try {
  const version = daemon.docker(['version', '--format', '{{.Server.Version}}']).stdout.trim();
  console.log(`dockerd ${version}`);
  // The base image, built by BuildKit from the same Dockerfile and rootfs.tar tsbuild's tests build it from.
  // Debian's 20.10 client (BuildKit built in), as the testkit uses, before a newer one on PATH.
  const bb = await exec(
    existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker',
    ['-H', daemon.host, 'build', '-q', '-t', 'tsbuild/busybox:1', join(repo, 'fixtures', 'busybox')],
    { DOCKER_BUILDKIT: '1' },
  );
  if (bb.code !== 0) throw new Error(`building the busybox base: ${bb.stderr}`);
  const base = await baseTree(rootfs);
  const bk = dockerBuilder(daemon.host);
  for (const c of cases) {
    const w = join(work, c.name);
    rmSync(w, { recursive: true, force: true });
    mkdirSync(w);
    let result;
    try {
      result = await recordCase(bk, c, w, base);
    } catch (e) {
      console.log(`${c.name}: ERROR ${e.message}`);
      stale++;
      continue;
    }
    const file = join(c.dir, 'buildkit.json');
    const text = JSON.stringify(result.record, null, 1) + '\n';
    if (!c.spec.fail !== result.record.build.ok) {
      console.log(
        `${c.name}: BuildKit's build ${result.record.build.ok ? 'succeeded' : 'failed'}, case.json says ` +
          `${c.spec.fail ? 'it fails' : 'it succeeds'}\n${result.log.split('\n').slice(-15).join('\n')}`,
      );
    }
    writeFileSync(join(w, 'buildkit.log'), result.log);
    if (live) {
      const old = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
      const d = diffRecords(old, result.record, ['recorded', 'now']);
      if (d.length) {
        stale++;
        console.log(`${c.name}: STALE\n${d.join('\n')}`);
      } else console.log(`${c.name}: recording current`);
    } else {
      writeFileSync(file, text);
      console.log(`${c.name}: recorded`);
    }
  }
} finally {
  await daemon.stop();
  if (process.env.KEEP) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
if (live) console.log(`${cases.length - stale}/${cases.length} recordings current`);
process.exit(stale ? 1 : 0);
