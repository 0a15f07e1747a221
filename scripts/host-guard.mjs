// The test suite's host guard: a test must change nothing on the machine outside what it created, and
// leave nothing behind. scripts/run-tests.mjs takes a snapshot before the suite and one after; any
// difference the suite is responsible for fails the run, with the list.
//
//   prepare()               this run's id and temp dir; the runner passes `env` to every test process
//   snapshot(run)           interfaces, mounts, cgroups, processes, /dev/shm and sandbox-state entries
//   compare(before, after)  { problems, notes }: problems fail the run, notes are printed only
//   finish(run)             removes the run's temp dir (never through a mount)
//
// Attribution. Other people's builds and test runs share this machine, so "anything new" would fail
// runs for what others did. A difference counts only when this run can be told apart as its cause:
//   - temp files: every test process gets TMPDIR=<run dir>, so mounts under it are this run's;
//   - processes: every test process gets TSBUILD_TEST_RUN=<id>, which their children inherit; a
//     process still carrying it (or naming the run dir) after the suite is a leftover;
//   - interfaces: testkit's bridges are named tsb<id>…; an interface of the machine that disappears
//     or is recreated (a new ifindex: what --bridge=none did to docker0) counts whoever did it, since
//     no test may do that; the transient names of test daemons (tsb*, veth*) are left out;
//   - cgroups, sandbox state dirs: tsbuild names a run's cgroup and state dir <owner pid>-…; a new one
//     whose owner is dead (a zombie included) or carries this run's id is a leftover. One left by
//     someone else's process that died during this run would be counted too (until the next sandbox
//     run of any tsbuild on the machine sweeps it); the same holds for new tsbuild-* entries in /dev/shm.
// Mounts are also compared machine-wide: a mount that vanished outside temp and state places counts;
// new ones elsewhere are notes.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CG = '/sys/fs/cgroup';
const SHM = '/dev/shm';
const STATE_DIRS = () => [
  '/run/tsbuild-sandbox',
  ...list(SHM)
    .filter((n) => /^tsbuild-sandbox-\d+$/.test(n))
    .map((n) => join(SHM, n)),
];

/** This run's id (5 characters, so testkit can put it in a 15-character interface name) and temp dir. */
export function prepare() {
  const id = randomBytes(4).readUInt32BE(0).toString(36).padStart(5, '0').slice(-5);
  const tmp = join(tmpdir(), `tsbuild-run-${id}`);
  mkdirSync(tmp, { mode: 0o755 });
  return { id, tmp, env: { TMPDIR: tmp, TSBUILD_TEST_RUN: id } };
}

function list(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function read(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function under(path, dir) {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function links() {
  const out = {};
  for (const name of list('/sys/class/net')) {
    const ifindex = Number(read(`/sys/class/net/${name}/ifindex`));
    const up = (Number(read(`/sys/class/net/${name}/flags`)) & 1) === 1;
    out[name] = { ifindex, up };
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));

function mounts() {
  return (read('/proc/self/mountinfo') ?? '')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const dash = f.indexOf('-');
      return { id: f[0], point: unescape(f[4]), fstype: f[dash + 1], source: unescape(f[dash + 2] ?? '') };
    });
}

/** Hierarchies: the v2 tree at /sys/fs/cgroup, or one per v1 controller (and v2's at unified/). */
function cgroupRoots() {
  if (existsSync(`${CG}/cgroup.controllers`)) return [CG];
  return list(CG)
    .map((c) => join(CG, c))
    .filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/** tsbuild run cgroups (<root>/tsbuild/<id>) and top-level cgroups (test daemons' parents are there). */
function cgroups() {
  const runs = [],
    top = [];
  for (const root of cgroupRoots()) {
    for (const id of list(join(root, 'tsbuild'))) {
      if (isDir(join(root, 'tsbuild', id))) runs.push(join(root, 'tsbuild', id));
    }
    for (const name of list(root)) if (isDir(join(root, name))) top.push(join(root, name));
  }
  return { runs, top };
}

function isDir(p) {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

function processes() {
  const out = [];
  for (const p of list('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const environ = read(`/proc/${p}/environ`);
    const cmdline = read(`/proc/${p}/cmdline`);
    if (cmdline === undefined) continue;
    const run = /(?:^|\0)TSBUILD_TEST_RUN=([^\0]*)/.exec(environ ?? '')?.[1];
    // A zombie has ended (its tag cannot be read any more): it owns nothing, whoever's it was.
    const stat = read(`/proc/${p}/stat`) ?? '';
    const zombie = /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
    out.push({ pid: Number(p), run, zombie, cmd: cmdline.split('\0').filter(Boolean).join(' ').slice(0, 200) });
  }
  return out;
}

export function snapshot(run = { id: '', tmp: '' }) {
  return {
    run,
    links: links(),
    mounts: mounts(),
    cgroups: cgroups(),
    processes: processes(),
    shm: list(SHM).filter((n) => n.startsWith('tsbuild-') && !/^tsbuild-sandbox-\d+$/.test(n)),
    stateRuns: STATE_DIRS().flatMap((d) => list(d).map((n) => join(d, n))),
  };
}

/**
 * The owner pid in a tsbuild run id (<pid>-<n>-<hex>): alive and someone else's → not ours. A zombie
 * owner is dead (tsbuild's sweeps count it so too): an orphan's reaper may take seconds to reap it.
 */
function ownedByOthers(name, after) {
  const pid = Number(name.split('-')[0]);
  const p = after.processes.find((x) => x.pid === pid);
  return p !== undefined && !p.zombie && p.run !== after.run.id;
}

export function compare(before, after) {
  const problems = [],
    notes = [];
  const { id, tmp } = after.run;
  const ours = (name) => id !== '' && name.startsWith(`tsb${id}`);

  // Interfaces.
  for (const name of Object.keys(after.links)) {
    if (before.links[name]) continue;
    if (ours(name)) problems.push(`interface ${name}: a test bridge of this run was left`);
    else notes.push(`interface ${name}: new (not named by this run)`);
  }
  for (const [name, was] of Object.entries(before.links)) {
    if (/^(tsb|veth)/.test(name)) continue;
    const now = after.links[name];
    if (!now) problems.push(`interface ${name}: deleted during the run (it existed before)`);
    else if (now.ifindex !== was.ifindex) {
      problems.push(`interface ${name}: deleted and created again (ifindex ${was.ifindex} → ${now.ifindex})`);
    } else if (now.up !== was.up) {
      problems.push(`interface ${name}: was ${was.up ? 'up' : 'down'}, now ${now.up ? 'up' : 'down'}`);
    }
  }

  // Mounts.
  const key = (m) => `${m.id} ${m.point}`;
  const old = new Set(before.mounts.map(key));
  const now = new Set(after.mounts.map(key));
  const scratch = [tmpdir(), '/tmp', SHM, '/run', '/var/run', '/var/lib/docker', '/var/lib/containers'];
  const stateDirs = STATE_DIRS();
  for (const m of after.mounts) {
    if (old.has(key(m))) continue;
    const mine =
      (tmp && under(m.point, tmp)) || stateDirs.some((d) => under(m.point, d)) || m.point.startsWith(`${SHM}/tsbuild-`);
    if (mine) problems.push(`mount ${m.point} (${m.fstype} ${m.source}): left by this run`);
    else notes.push(`mount ${m.point} (${m.fstype}): new (outside this run's directories)`);
  }
  for (const m of before.mounts) {
    if (now.has(key(m))) continue;
    if (scratch.some((d) => under(m.point, d))) continue;
    problems.push(`mount ${m.point} (${m.fstype} ${m.source}): unmounted during the run (it existed before)`);
  }

  // cgroups.
  const oldRuns = new Set(before.cgroups.runs);
  for (const c of after.cgroups.runs) {
    if (oldRuns.has(c)) continue;
    if (!ownedByOthers(c.split('/').pop(), after)) problems.push(`cgroup ${c}: a sandbox run's cgroup was left`);
  }
  const oldTop = new Set(before.cgroups.top);
  for (const c of after.cgroups.top) {
    if (oldTop.has(c)) continue;
    if (ours(c.split('/').pop())) problems.push(`cgroup ${c}: a test daemon's cgroup parent was left`);
    else notes.push(`cgroup ${c}: new (not named by this run)`);
  }

  // Processes.
  for (const p of after.processes) {
    if (p.run === id && id !== '') problems.push(`process ${p.pid} (${p.cmd}): started by this run, still running`);
    else if (tmp && p.cmd.includes(tmp)) {
      problems.push(`process ${p.pid} (${p.cmd}): works in this run's temp dir, still running`);
    }
  }

  // /dev/shm and sandbox state dirs.
  const oldShm = new Set(before.shm);
  for (const n of after.shm) if (!oldShm.has(n)) problems.push(`${SHM}/${n}: left by a test`);
  const oldState = new Set(before.stateRuns);
  for (const d of after.stateRuns) {
    if (oldState.has(d) || ownedByOthers(d.split('/').pop(), after)) continue;
    problems.push(`${d}: a sandbox run's state directory was left`);
  }

  // Temp files are not counted (finish() removes the run dir), but say who leaves them.
  // The end-to-end helpers put every temp dir under tsbuild-test/: name those, not their parent.
  const left = (tmp ? list(tmp) : []).flatMap((n) =>
    n === 'tsbuild-test' ? list(join(tmp, n)).map((c) => `${n}/${c}`) : [n],
  );
  if (left.length) {
    const some = left.slice(0, 8).join(', ');
    notes.push(`${left.length} entries left in the run's temp dir (removed at the end): ${some}`);
  }

  return { problems, notes };
}

/** Removes the run's temp dir, unless something is still mounted beneath it (rm would go through). */
export function finish(run) {
  if (!run.tmp || !existsSync(run.tmp)) return;
  const mounted = mounts().filter((m) => under(m.point, run.tmp));
  if (mounted.length) return `kept ${run.tmp}: ${mounted.length} mount(s) beneath it`;
  rmSync(run.tmp, { recursive: true, force: true });
  return undefined;
}

/** The summary lines the runner prints. */
export function report({ problems, notes }, before) {
  const lines = [];
  const counts =
    `${Object.keys(before.links).length} interfaces, ${before.mounts.length} mounts, ` +
    `${before.cgroups.runs.length + before.cgroups.top.length} cgroups, ${before.processes.length} processes`;
  for (const n of notes) lines.push(`  note: ${n}`);
  if (problems.length === 0) lines.push(`host guard: nothing left or changed on the host (before: ${counts})`);
  else lines.push(`host guard: FAILED, ${problems.length} change(s) to the host:`, ...problems.map((p) => `  ${p}`));
  return lines.join('\n');
}
