// The differential suite's oracle: reads an image archive (what `docker save` writes, and what
// `tsbuild build -o type=docker` writes) with tar-stream alone, applies its layers in order as a
// container runtime would (whiteouts, opaque directories, hard links), and describes the result in a
// form two builders' images can be compared in: one line per path, the hard-link groups, the config.
// It shares no code with tsbuild's layer store on purpose: an image tsbuild misreads the same way it
// writes it would otherwise look right.
import {
  closeSync,
  openSync,
  readSync,
  chmodSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';

/** What a case asks for (case.json). */
export interface CaseSpec {
  /** What the case checks, in a sentence. */
  description: string;
  buildArgs?: Record<string, string>;
  target?: string;
  /** Secrets for `--secret id=ID,src=FILE`: id -> file in the case folder. */
  secrets?: Record<string, string>;
  /** Image archives (docker save format) in the case folder, loaded into the builder before the build. */
  load?: string[];
  /**
   * Base images each builder builds before the case, from a fixture folder (`fixtures/NAME`, its
   * `make-rootfs.sh` run first) for a platform: an arm64 busybox without committing an archive of it.
   */
  bases?: { tag: string; fixture: string; platform: string }[];
  /** `--platform` for the case's build. */
  platform?: string;
  /** Run the image with this command (an empty array: its own Entrypoint/Cmd) and record what it prints. */
  run?: string[];
  /** The build must fail: both builders fail, with the same failing RUN exit code, and tag nothing. */
  fail?: boolean;
  /**
   * Build twice, with the case's `change/` folder copied over the context in between (and
   * `changeBuildArgs` replacing `buildArgs`), and compare which steps of the second build were cache hits.
   */
  change?: boolean;
  changeBuildArgs?: Record<string, string>;
  /** A difference tsbuild makes on purpose; `mask` says exactly what is left out of the comparison. */
  deliberate?: { why: string; mask: Mask };
  /** A divergence not fixed yet: the case must still differ (else the marker is stale). */
  known?: string;
  /**
   * Compare mtimes too, for this case: its context's files and directories are dated 2000-01-01 first, and
   * each path's line ends with its mtime, `mtime=build` when the build made it (at or after its start).
   */
  mtimes?: boolean;
}

/** What a deliberate difference leaves out of the comparison, and nothing else. */
export interface Mask {
  /** These paths' lines, and those of everything below them, are dropped from both records (no patterns). */
  paths?: string[];
  /** These config fields are dropped from both records. */
  config?: string[];
  /** The build's exit status is not compared (only that both failed). */
  exitStatus?: boolean;
  /**
   * One builder accepts what the other refuses: only that is compared (BuildKit's build succeeded and
   * tsbuild's failed, `tsbuild-refuses`, or the other way round, `tsbuild-accepts`); nothing else can be.
   */
  outcome?: 'tsbuild-refuses' | 'tsbuild-accepts';
}

/** A builder's result for one case: what buildkit.json holds, and what tsbuild's build is turned into. */
export interface Record_ {
  /** `loadFailed`: the case's image archive the builder would not load (nothing was built). */
  build: { ok: boolean; exit: number; tagged: boolean; runExit?: number; loadFailed?: string };
  /** Paths that differ from the base image (fixtures/busybox/rootfs.tar), one line each; removed ones say so. */
  files?: Record<string, string>;
  /** Groups of two or more paths that are one inode, each sorted, the groups sorted. */
  hardlinks?: string[][];
  config?: Record<string, unknown>;
  run?: { exit: number; stdout: string };
  /** Second build of a change case: each step with whether it was a cache hit. */
  cached?: Record<string, boolean>;
}

interface Node {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  target?: string;
  dev?: string;
  cap?: string;
  text?: string;
  implied?: boolean;
  /** Seconds since the epoch, as the tar header has it. */
  mtime?: number;
  /** The layer that wrote it: an opaque marker clears only what earlier layers wrote. */
  layer: number;
}

const clean = (name: string): string => {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return '/' + parts.join('/');
};
const parentOf = (p: string): string => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')));
const baseOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/** A root filesystem being assembled: path -> node; hard links are one node object under several paths. */
export class Tree {
  nodes = new Map<string, Node>([['/', { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, layer: -1 }]]);

  remove(path: string): void {
    for (const p of [...this.nodes.keys()]) if (p === path || p.startsWith(path + '/')) this.nodes.delete(p);
  }

  private ensureParents(path: string, layer: number): void {
    const parent = parentOf(path);
    if (this.nodes.has(parent)) return;
    this.ensureParents(parent, layer);
    this.nodes.set(parent, { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, implied: true, layer });
  }

  /** Applies one layer (an uncompressed tar stream); returns how many entries it had. */
  async apply(layer: Readable, index: number): Promise<number> {
    const ex = tar.extract();
    let entries = 0;
    const done = (async () => {
      for await (const entry of ex) {
        entries++;
        const h = entry.header;
        const path = clean(h.name);
        const name = baseOf(path);
        if (name === '.wh..wh..opq') {
          const dir = parentOf(path);
          for (const [p, n] of [...this.nodes])
            if (p.startsWith(dir === '/' ? '/' : dir + '/') && p !== dir && n.layer < index) this.nodes.delete(p);
          entry.resume();
          continue;
        }
        if (name.startsWith('.wh.')) {
          this.remove(join(parentOf(path), name.slice(4)));
          entry.resume();
          continue;
        }
        if (path === '/') {
          const root = this.nodes.get('/')!;
          Object.assign(root, { mode: h.mode & 0o7777, uid: h.uid, gid: h.gid, layer: index });
          entry.resume();
          continue;
        }
        this.ensureParents(path, index);
        const pax = (h.pax ?? {}) as Record<string, string>;
        const capRaw = pax['SCHILY.xattr.security.capability'];
        const cap = capRaw === undefined ? undefined : Buffer.from(capRaw, 'latin1').toString('hex');
        const mtime = h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0;
        const base = {
          mode: h.mode & 0o7777,
          uid: h.uid,
          gid: h.gid,
          size: 0,
          mtime,
          layer: index,
          ...(cap ? { cap } : {}),
        };
        if (h.type === 'link') {
          const target = this.nodes.get(clean(h.linkname));
          entry.resume();
          if (!target) throw new Error(`layer ${index}: hard link ${path} to ${h.linkname}, which is not there`);
          this.remove(path);
          this.nodes.set(path, target);
          continue;
        }
        const existing = this.nodes.get(path);
        if (h.type === 'directory') {
          entry.resume();
          // A directory over a directory keeps what is in it (and takes the new metadata).
          if (existing?.type === 'dir') {
            Object.assign(existing, base, { implied: undefined });
            continue;
          }
          this.remove(path);
          this.nodes.set(path, { type: 'dir', ...base });
          continue;
        }
        this.remove(path);
        if (h.type === 'file' || h.type === 'contiguous-file') {
          const hash = createHash('sha256');
          let size = 0;
          let head = Buffer.alloc(0);
          for await (const chunk of entry) {
            hash.update(chunk as Buffer);
            size += (chunk as Buffer).length;
            if (head.length < 161) head = Buffer.concat([head, chunk as Buffer]);
          }
          // Short text is shown too, so that a diff says what a file holds (the digest decides equality).
          const text = size <= 160 && !/[^\t\n\x20-\x7e]/.test(head.toString('latin1')) ? head.toString() : undefined;
          this.nodes.set(path, {
            type: 'file',
            ...base,
            size,
            sha256: hash.digest('hex'),
            ...(text !== undefined ? { text } : {}),
          });
        } else if (h.type === 'symlink') {
          entry.resume();
          this.nodes.set(path, { type: 'symlink', ...base, mode: 0o777, target: h.linkname });
        } else if (h.type === 'character-device' || h.type === 'block-device' || h.type === 'fifo') {
          entry.resume();
          const type = h.type === 'fifo' ? 'fifo' : h.type === 'block-device' ? 'block' : 'char';
          this.nodes.set(path, { type, ...base, ...(type !== 'fifo' ? { dev: `${h.devmajor},${h.devminor}` } : {}) });
        } else {
          entry.resume();
          throw new Error(`layer ${index}: ${path}: tar entry type ${h.type} not understood`);
        }
      }
    })();
    await Promise.all([pipeline(layer, ex), done]);
    return entries;
  }

  /** One line per path. */
  lines(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [p, n] of this.nodes) {
      if (p === '/') continue;
      out.set(p, describe(n));
    }
    return out;
  }

  /** A path's mtime (seconds), undefined for a directory no layer has an entry for. */
  mtime(path: string): number | undefined {
    const n = this.nodes.get(path);
    return n && !n.implied ? n.mtime : undefined;
  }

  hardlinks(): string[][] {
    const groups = new Map<Node, string[]>();
    for (const [p, n] of this.nodes) {
      if (n.type === 'dir') continue;
      const g = groups.get(n) ?? [];
      g.push(p);
      groups.set(n, g);
    }
    return [...groups.values()]
      .filter((g) => g.length > 1)
      .map((g) => g.sort())
      .sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }
}

function describe(n: Node): string {
  const owner = `${n.uid}:${n.gid}`;
  const mode = n.mode.toString(8).padStart(4, '0');
  const cap = n.cap ? ` cap=${n.cap}` : '';
  const text = n.text === undefined ? '' : ` ${JSON.stringify(n.text)}`;
  switch (n.type) {
    case 'file':
      return `file ${mode} ${owner} ${n.size} ${n.sha256}${cap}${text}`;
    case 'dir':
      return `dir ${mode} ${owner}${n.implied ? ' (implied: no entry in any layer)' : ''}${cap}`;
    case 'symlink':
      return `symlink ${owner} -> ${n.target}`;
    default:
      return `${n.type} ${mode} ${owner}${n.dev ? ` ${n.dev}` : ''}${cap}`;
  }
}

/** A layer file as an uncompressed stream (gzip recognised by its magic number; plain tar otherwise). */
function layerStream(file: string): Readable {
  const fd = Buffer.alloc(4);
  const h = openSync(file, 'r');
  try {
    readSync(h, fd, 0, 4, 0);
  } finally {
    closeSync(h);
  }
  if (fd[0] === 0x1f && fd[1] === 0x8b) return createReadStream(file).pipe(createGunzip());
  if (fd[0] === 0x28 && fd[1] === 0xb5 && fd[2] === 0x2f && fd[3] === 0xfd) {
    throw new Error(`${file}: a zstd layer (build with --compression gzip for the differential suite)`);
  }
  return createReadStream(file);
}

/** Unpacks an image archive's outer tar (manifest, config, layer files) into `dir`. */
export async function unpackArchive(archive: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const ex = tar.extract();
  const done = (async () => {
    for await (const entry of ex) {
      const path = clean(entry.header.name);
      if (path.split('/').includes('..')) throw new Error(`${archive}: ${entry.header.name}`);
      const abs = join(dir, path);
      if (entry.header.type === 'directory') {
        mkdirSync(abs, { recursive: true });
        entry.resume();
      } else if (entry.header.type === 'file') {
        mkdirSync(parentOf(abs), { recursive: true });
        await pipeline(entry, createWriteStream(abs));
      } else if (entry.header.type === 'symlink') {
        // docker save writes a layer that occurs twice once, and the second as a link to the first.
        const target = join(parentOf(abs), entry.header.linkname);
        if (!target.startsWith(dir + '/')) throw new Error(`${archive}: ${path} links outside the archive`);
        mkdirSync(parentOf(abs), { recursive: true });
        symlinkSync(entry.header.linkname, abs);
        entry.resume();
      } else entry.resume();
    }
  })();
  await Promise.all([pipeline(createReadStream(archive), ex), done]);
}

/** Flattens an unpacked image archive (manifest.json with Config and Layers, as docker-archive has it). */
export async function flattenImage(dir: string): Promise<{ tree: Tree; config: Record<string, unknown> }> {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
    Config: string;
    Layers: string[];
  }[];
  if (manifest.length !== 1) throw new Error(`${dir}: ${manifest.length} images in the archive`);
  const m = manifest[0];
  const config = JSON.parse(readFileSync(join(dir, m.Config), 'utf8'));
  const tree = new Tree();
  let empty = 0;
  for (const [i, l] of m.Layers.entries()) if ((await tree.apply(layerStream(join(dir, l)), i)) === 0) empty++;
  return { tree, config: normaliseConfig(config, m.Layers.length - empty, empty) };
}

const fields = [
  'author',
  'Env',
  'Entrypoint',
  'Cmd',
  'WorkingDir',
  'User',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'Healthcheck',
  'StopSignal',
  'Shell',
  'OnBuild',
  'ArgsEscaped',
] as const;

/**
 * The config fields compared; null, missing and empty are the same here. `layers` counts the layers with
 * entries, `emptyLayers` (only when there are any) those without: a step that changes nothing.
 * `platform` (OS/ARCH) is there when it is not linux/amd64, the machine's, which every other case builds
 * for (so their recordings stand); the variant is not compared (BuildKit leaves arm64's out, tsbuild says v8).
 * `keys`: which keys the raw config JSON has (its own and its `config`'s, `=null` for a null), for what the
 * fields above cannot tell apart (`"OnBuild": null` or none); the variant is left out of it as above.
 * `history`: each entry's `created_by` (the times are the builds' own); `historyEmpty`: the places (from 0)
 * of the entries marked `empty_layer`, apart, for the deliberate difference in empty layers.
 */
export function normaliseConfig(image: any, layers: number, emptyLayers = 0): Record<string, unknown> {
  const c = image.config ?? {};
  const out: Record<string, unknown> = {};
  const platform = `${image.os}/${image.architecture}`;
  if (platform !== 'linux/amd64') out.platform = platform;
  for (const f of fields) {
    let v = f === 'author' ? image.author : c[f];
    if (v === null || v === undefined || v === '') continue;
    if (typeof v === 'object' && !Array.isArray(v)) {
      if (Object.keys(v).length === 0) continue;
      if (f === 'ExposedPorts' || f === 'Volumes') v = Object.keys(v).sort();
      else v = Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    out[f] = v;
  }
  out.layers = layers;
  if (emptyLayers) out.emptyLayers = emptyLayers;
  const keys = (o: Record<string, unknown>, prefix: string) =>
    Object.keys(o).map((k) => `${prefix}${k}${o[k] === null ? '=null' : ''}`);
  out.keys = [...keys(image, '').filter((k) => k !== 'variant'), ...keys(c, 'config.')].sort();
  const history = (image.history ?? []) as { created_by?: string; empty_layer?: boolean }[];
  out.history = history.map((h) => h.created_by ?? '');
  out.historyEmpty = history.flatMap((h, i) => (h.empty_layer ? [i] : []));
  return out;
}

/** The base image's tree, straight from the rootfs tar both builders start from. */
export async function baseTree(rootfsTar: string): Promise<Map<string, string>> {
  const t = new Tree();
  await t.apply(createReadStream(rootfsTar), 0);
  return t.lines();
}

/**
 * What differs from the base: changed and added paths with their line, removed ones as `(removed)` (the
 * top of a removed tree only). `built`: the second the build started, to end each line with its mtime
 * (`mtime=build` from then on, the date otherwise), for a case that compares mtimes.
 */
export function filesRecord(tree: Tree, base: Map<string, string>, built?: number): Record<string, string> {
  const now = tree.lines();
  const out: Record<string, string> = {};
  const when = (p: string) => {
    const t = tree.mtime(p);
    if (built === undefined || t === undefined) return '';
    return ` mtime=${t >= built ? 'build' : new Date(t * 1000).toISOString().replace('.000Z', 'Z')}`;
  };
  for (const p of [...new Set([...now.keys(), ...base.keys()])].sort()) {
    const a = now.get(p);
    // Below a removed directory everything is gone too: only the top is listed.
    if (a === undefined) {
      if (parentOf(p) === '/' || now.has(parentOf(p))) out[p] = '(removed)';
    } else if (a !== base.get(p)) out[p] = a + when(p);
  }
  return out;
}

/** Dates a context's files and directories (symlinks left alone) 2000-01-01, for a case that compares mtimes. */
function dateContext(dir: string): void {
  const t = new Date('2000-01-01T00:00:00Z');
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) dateContext(join(dir, e.name));
    else if (!e.isSymbolicLink()) utimesSync(join(dir, e.name), t, t);
  }
  utimesSync(dir, t, t);
}

/** A record with a deliberate difference's mask applied (the same to both sides). */
export function masked(r: Record_, mask: Mask | undefined): Record_ {
  if (!mask) return r;
  const c: Record_ = JSON.parse(JSON.stringify(r));
  const hit = (q: string) => (mask.paths ?? []).some((p) => q === p || q.startsWith(`${p}/`));
  if (c.files) c.files = Object.fromEntries(Object.entries(c.files).filter(([q]) => !hit(q)));
  if (c.hardlinks) c.hardlinks = c.hardlinks.filter((g) => !g.some(hit));
  for (const f of mask.config ?? []) if (c.config) delete c.config[f];
  if (mask.exitStatus) c.build.exit = c.build.ok ? 0 : -1;
  return c;
}

/** The differences between two records, one line each (empty: identical). */
export function diffRecords(
  want: Record_,
  got: Record_,
  [wn, gn]: [string, string] = ['BuildKit', 'tsbuild'],
): string[] {
  const out: string[] = [];
  const cmp = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b))
      out.push(`${what}: ${wn} ${JSON.stringify(a)}, ${gn} ${JSON.stringify(b)}`);
  };
  cmp('build', want.build, got.build);
  // One built and the other did not: there is no second image to compare the first with.
  if (want.build.ok !== got.build.ok) return out;
  const base = '(as in the base image)';
  const wf = want.files ?? {};
  const gf = got.files ?? {};
  for (const p of [...new Set([...Object.keys(wf), ...Object.keys(gf)])].sort()) {
    if (wf[p] !== gf[p]) out.push(`  ${p}\n    ${wn}: ${wf[p] ?? base}\n    ${gn}: ${gf[p] ?? base}`);
  }
  cmp('hard links', want.hardlinks ?? [], got.hardlinks ?? []);
  const wc = want.config ?? {};
  const gc = got.config ?? {};
  for (const k of [...new Set([...Object.keys(wc), ...Object.keys(gc)])]) cmp(`config ${k}`, wc[k], gc[k]);
  cmp('run', want.run, got.run);
  cmp('cached steps', want.cached, got.cached);
  return out;
}

/** The cases, each a folder under `dir` with case.json. */
export function listCases(dir: string): { name: string; dir: string; spec: CaseSpec }[] {
  return readdirSync(dir)
    .filter((n) => statSync(join(dir, n)).isDirectory() && existsSync(join(dir, n, 'case.json')))
    .sort()
    .map((name) => ({
      name,
      dir: join(dir, name),
      spec: JSON.parse(readFileSync(join(dir, name, 'case.json'), 'utf8')),
    }));
}

/**
 * Which steps of a build were cache hits, from plain progress (`#N [stage i/n] INSTR`, then `#N CACHED`
 * for a hit; BuildKit's and tsbuild's alike). A step is named by its stage, its place among the stage's
 * reported steps and its instruction word (`stage-1 #2 COPY`): the builders number and print steps
 * differently (BuildKit counts only filesystem steps and prints arguments expanded). FROM is left out
 * (BuildKit reports a base as CACHED, tsbuild as nothing); an unnamed stage (BuildKit, one stage) is
 * stage-0, as tsbuild names it. Keys are sorted.
 */
export function cachedSteps(progress: string): Record<string, boolean> {
  const steps = new Map<string, { stage: string; i: number; word: string; cached: boolean }>();
  for (const line of progress.split('\n')) {
    const m = /^#(\d+) \[(?:(\S+) )?(\d+)\/\d+\] (\S+)/.exec(line);
    if (m && !steps.has(m[1]) && m[4] !== 'FROM') {
      steps.set(m[1], { stage: m[2] ?? 'stage-0', i: Number(m[3]), word: m[4], cached: false });
    }
    const c = /^#(\d+) CACHED$/.exec(line);
    if (c && steps.has(c[1])) steps.get(c[1])!.cached = true;
  }
  const out: Record<string, boolean> = {};
  const byStage = new Map<string, { i: number; word: string; cached: boolean }[]>();
  for (const s of steps.values()) byStage.set(s.stage, [...(byStage.get(s.stage) ?? []), s]);
  for (const [stage, list] of byStage) {
    list.sort((a, b) => a.i - b.i).forEach((s, k) => (out[`${stage} #${k + 1} ${s.word}`] = s.cached));
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The exit code of the failing RUN, as either builder reports it. */
export function failedRunExit(stderr: string): number | undefined {
  const m = /exit code: (\d+)/.exec(stderr) ?? /exit(?:ed with)? (?:status|code) (\d+)/i.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

// --- Building a case, with either builder ----------------------------------------------------------------

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (a daemon's log pipe must keep draining). */
export function exec(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => {
      stderr += `\n(no answer in ${timeoutMs / 1000} s: killed)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => (stderr += e.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal ? constants.signals[signal] : 9), stdout, stderr });
    });
  });
}

/** One builder as the suite drives it. */
export interface Builder {
  name: string;
  /** Builds `ctx` as `tag` with plain progress; on success also writes the image as a docker archive. */
  build(ctx: string, spec: CaseSpec, caseDir: string, tag: string, archive: string): Promise<Run>;
  tagged(tag: string): Promise<boolean>;
  /** Loads an image archive (`docker load` / `tsbuild load`). */
  load(archive: string): Promise<Run>;
  /** Builds a base image from a fixture folder for a platform, tagged `tag`. */
  buildBase(dir: string, tag: string, platform: string): Promise<Run>;
  run(tag: string, cmd: string[]): Promise<Run>;
}

const buildFlags = (spec: CaseSpec, caseDir: string): string[] => [
  ...Object.entries(spec.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
  ...(spec.target ? ['--target', spec.target] : []),
  ...(spec.platform ? ['--platform', spec.platform] : []),
  ...Object.entries(spec.secrets ?? {}).flatMap(([id, f]) => ['--secret', `id=${id},src=${join(caseDir, f)}`]),
];

/** BuildKit in a dockerd (Debian's docker.io 20.10 client with DOCKER_BUILDKIT=1). */
export function dockerBuilder(host: string): Builder {
  const cli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const docker = (args: string[]) => exec(cli, ['-H', host, ...args], { DOCKER_BUILDKIT: '1' });
  return {
    name: 'BuildKit',
    async build(ctx, spec, caseDir, tag, archive) {
      const r = await docker(['build', '--progress=plain', '-t', tag, ...buildFlags(spec, caseDir), ctx]);
      if (r.code === 0) {
        const s = await docker(['save', '-o', archive, tag]);
        if (s.code !== 0) throw new Error(`docker save ${tag}: ${s.stderr}`);
      }
      return r;
    },
    async tagged(tag) {
      return (await docker(['image', 'inspect', tag])).code === 0;
    },
    run: (tag, cmd) => docker(['run', '--rm', tag, ...cmd]),
    load: (archive) => docker(['load', '-i', archive]),
    buildBase: (dir, tag, platform) => docker(['build', '-q', '--platform', platform, '-t', tag, dir]),
  };
}

/** tsbuild, the real CLI, with a store of its own (`command`: the launcher). */
export function tsbuildBuilder(command: string, root: string): Builder {
  const env = { TSBUILD_ROOT: root, CI: 'true' };
  return {
    name: 'tsbuild',
    build: (ctx, spec, caseDir, tag, archive) =>
      exec(
        command,
        [
          'build',
          '--progress=plain',
          '--compression',
          'gzip',
          '-t',
          tag,
          '-o',
          `type=docker,dest=${archive}`,
          ...buildFlags(spec, caseDir),
          ctx,
        ],
        env,
      ),
    async tagged(tag) {
      return (await exec(command, ['inspect', tag], env)).code === 0;
    },
    run: (tag, cmd) => exec(command, ['run', '--rm', tag, ...cmd], env),
    load: (archive) => exec(command, ['load', '-i', archive], env),
    buildBase: (dir, tag, platform) => exec(command, ['build', '-q', '--platform', platform, '-t', tag, dir], env),
  };
}

/** The files a case folder holds that are not its build context. */
const notContext = new Set(['case.json', 'buildkit.json', 'change', 'prepare.json']);

/**
 * Copies a case's context to `dest` with modes that do not depend on the checkout (files 0644, or 0755
 * when executable in the repository; directories 0755), so that both builders see the same context.
 */
export function prepareContext(caseDir: string, dest: string, from = caseDir, top = true): void {
  mkdirSync(dest, { recursive: true, mode: 0o755 });
  chmodSync(dest, 0o755);
  for (const e of readdirSync(from, { withFileTypes: true })) {
    if (top && from === caseDir && notContext.has(e.name)) continue;
    const src = join(from, e.name);
    const dst = join(dest, e.name);
    if (e.isSymbolicLink()) {
      rmSync(dst, { force: true, recursive: true });
      symlinkSync(readlinkSync(src), dst);
    } else if (e.isDirectory()) prepareContext(caseDir, dst, src, false);
    else {
      rmSync(dst, { force: true, recursive: true });
      copyFileSync(src, dst);
      chmodSync(dst, statSync(src).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/**
 * What git cannot keep in a case's context, from its `prepare.json`: `links` [[existing, new], ...] are
 * made hard links, `renames` [[from, to], ...] renamed (a `.git` folder cannot be committed as one).
 */
function prepareExtras(caseDir: string, ctx: string): void {
  const f = join(caseDir, 'prepare.json');
  if (!existsSync(f)) return;
  const p = JSON.parse(readFileSync(f, 'utf8')) as { links?: [string, string][]; renames?: [string, string][] };
  for (const [a, b] of p.renames ?? []) renameSync(join(ctx, a), join(ctx, b));
  for (const [a, b] of p.links ?? []) {
    rmSync(join(ctx, b), { force: true });
    linkSync(join(ctx, a), join(ctx, b));
  }
}

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'fixtures');

/** Builds one case with `b` and describes the result. `work`: an empty scratch folder. */
export async function recordCase(
  b: Builder,
  c: { name: string; dir: string; spec: CaseSpec },
  work: string,
  base: Map<string, string>,
): Promise<{ record: Record_; log: string }> {
  const ctx = join(work, 'ctx');
  const archive = join(work, 'image.tar');
  const tag = `differential/${c.name}:latest`;
  prepareContext(c.dir, ctx);
  prepareExtras(c.dir, ctx);
  if (c.spec.mtimes) dateContext(ctx);
  for (const base of c.spec.bases ?? []) {
    const dir = join(fixtures, base.fixture);
    const mk = await exec('bash', [join(dir, 'make-rootfs.sh')]);
    if (mk.code !== 0) throw new Error(`fixtures/${base.fixture}/make-rootfs.sh: ${mk.stderr}`);
    const r = await b.buildBase(dir, base.tag, base.platform);
    if (r.code !== 0) throw new Error(`${b.name}: building the base ${base.tag}: ${r.stderr}`);
  }
  for (const f of c.spec.load ?? []) {
    const l = await b.load(join(c.dir, f));
    if (l.code !== 0)
      return { record: { build: { ok: false, exit: l.code, tagged: false, loadFailed: f } }, log: l.stderr };
  }
  // Whole seconds, as tar headers have them: what the build makes is dated from this second on.
  const started = Math.floor(Date.now() / 1000);
  let r = await b.build(ctx, c.spec, c.dir, tag, archive);
  let log = r.stderr;
  const record: Record_ = { build: { ok: r.code === 0, exit: r.code, tagged: await b.tagged(tag) } };
  if (r.code !== 0) {
    const runExit = failedRunExit(r.stderr);
    if (runExit !== undefined) record.build.runExit = runExit;
    return { record, log };
  }
  if (c.spec.change) {
    if (existsSync(join(c.dir, 'change'))) prepareContext(join(c.dir, 'change'), ctx, join(c.dir, 'change'), false);
    const second = { ...c.spec, buildArgs: c.spec.changeBuildArgs ?? c.spec.buildArgs };
    r = await b.build(ctx, second, c.dir, tag, archive);
    log += `\n--- second build, after change/ was applied\n${r.stderr}`;
    if (r.code !== 0) throw new Error(`${b.name}: the second build of ${c.name} failed:\n${r.stderr}`);
    record.cached = cachedSteps(r.stderr);
  }
  const unpacked = join(work, 'image');
  await unpackArchive(archive, unpacked);
  const { tree, config } = await flattenImage(unpacked);
  record.files = filesRecord(tree, base, c.spec.mtimes ? started : undefined);
  record.hardlinks = tree.hardlinks();
  record.config = config;
  if (c.spec.run) {
    const run = await b.run(tag, c.spec.run);
    record.run = { exit: run.code, stdout: run.stdout };
    log += `\n--- run\n${run.stderr}`;
  }
  return { record, log };
}
