// What the image commands show, shaped as docker shows it: `inspect`'s document, `history`'s rows and the
// rows `images --format` templates see. Data only; the commands print it (commands/images.ts).
import type { Image, ImageConfig, Store } from '@tsbuild/layerstore';
import { asStruct, emptyStruct, goString, nilList, nilMap, Nil } from './template.js';
import { ago, humanSize } from './table.js';
import { UsageError } from '../errors.js';

/** One row of the store's image list (a tag and the image it names), as `tsbuild images` lists it. */
export type ImageSummary = Awaited<ReturnType<Store['images']['list']>>[number];

/** Go's RFC3339Nano as docker prints a time: trailing zeros of the fraction dropped (`…:00Z`, `….5Z`). */
export function goTime(iso: string | undefined): string {
  if (!iso) return '0001-01-01T00:00:00Z';
  return iso.replace(
    /\.(\d*?)0*(Z|[+-]\d\d:\d\d)$/,
    (_, frac: string, zone: string) => (frac ? `.${frac}` : '') + zone,
  );
}

/** Go's time.Time.String() in UTC, as `docker images --format '{{.CreatedAt}}'` prints it. */
export function goTimeString(iso: string | undefined): string {
  const d = new Date(iso ?? 0);
  if (Number.isNaN(d.getTime())) return '';
  const frac = goTime(d.toISOString()).match(/\.(\d+)Z$/)?.[1];
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}${frac ? `.${frac}` : ''} +0000 UTC`;
}

const orNil = <T>(v: T | undefined | null, nil: Nil): T | Nil =>
  v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0) ? nil : v;
const structs = (m: Record<string, object> | undefined) =>
  m && Object.keys(m).length ? Object.fromEntries(Object.keys(m).map((k) => [k, emptyStruct])) : nilMap;

/**
 * docker's `Config` of an image inspect (docker 28: the OCI image config's fields in Go's order, empty
 * ones left out of its JSON but printed by templates as Go's zero values: `[]`, `map[]`, ``).
 */
export function dockerConfig(c: ImageConfig['config']): Record<string, unknown> {
  const cfg = c ?? {};
  // Printed whole, it is docker's struct: the OCI fields, then docker's extension (Healthcheck, OnBuild, Shell).
  const oci = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal'];
  const print = (o: Record<string, unknown>, keys: string[]) => keys.map((k) => goString(o[k])).join(' ');
  const struct = (o: Record<string, unknown>) =>
    `{{${print(o, [...oci, 'ArgsEscaped'])}} {${print(o, ['Healthcheck', 'OnBuild', 'Shell'])}}}`;
  return asStruct(
    {
      User: cfg.User || new Nil(''),
      ExposedPorts: structs(cfg.ExposedPorts),
      Env: orNil(cfg.Env, nilList),
      Entrypoint: orNil(cfg.Entrypoint, nilList),
      Cmd: orNil(cfg.Cmd, nilList),
      Volumes: structs(cfg.Volumes),
      WorkingDir: cfg.WorkingDir || new Nil(''),
      Labels: orNil(cfg.Labels, nilMap),
      StopSignal: cfg.StopSignal || new Nil(''),
      ArgsEscaped: cfg.ArgsEscaped || new Nil('false'),
      Healthcheck: cfg.Healthcheck ?? new Nil('<nil>'),
      OnBuild: orNil(cfg.OnBuild, nilList),
      Shell: orNil(cfg.Shell, nilList),
    },
    struct,
  );
}

/**
 * The docker-shaped inspect document (Id, RepoTags, RepoDigests, Created, Config, RootFS, Architecture,
 * Os, Size, ...) followed by what tsbuild printed before: ManifestDigest, Manifest, Layers, and the OCI
 * config as stored (ImageConfig). Size is the bytes the store holds (compressed layers), not docker's
 * unpacked size.
 */
export function inspectDocument(img: Image, tags: ImageSummary[]): Record<string, unknown> {
  const c = img.config;
  const history = c.history ?? [];
  const mine = tags.filter((t) => t.id === img.configDigest);
  return {
    Id: img.configDigest,
    RepoTags: mine.map((t) => `${t.repository}:${t.tag}`),
    // What each repository's tag names: the manifest, or the index over it (as docker's containerd store).
    RepoDigests: [...new Set(mine.map((t) => `${t.repository}@${t.indexDigest ?? img.manifestDigest}`))],
    Parent: '',
    Comment: history.at(-1)?.comment ?? '',
    Created: goTime(c.created),
    DockerVersion: '',
    Author: c.author ?? '',
    Config: dockerConfig(c.config),
    Architecture: c.architecture,
    ...(c.variant ? { Variant: c.variant } : { Variant: new Nil('') }),
    Os: c.os,
    Size: img.layers.reduce((n, l) => n + l.size, 0),
    RootFS: asStruct(
      { Type: c.rootfs?.type ?? 'layers', Layers: c.rootfs?.diff_ids ?? [] },
      (r) => `{${r.Type} ${goString(r.Layers)}}`,
    ),
    ManifestDigest: img.manifestDigest,
    Manifest: img.manifest,
    Layers: img.layers,
    ImageConfig: c,
  };
}

/** Docker's history row (the fields its templates name), newest first. */
export interface HistoryRow {
  Comment: string;
  CreatedAt: string;
  CreatedBy: string;
  CreatedSince: string;
  ID: string;
  Size: string;
}

/** docker's Ellipsis: at most `max` characters, the last one `…` when cut. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

/**
 * `history`'s rows: one per history entry, newest first; an entry that made a layer shows the layer's
 * size (`layerSizes`, unpacked as docker shows it; else as stored), the others 0B. The top row carries the
 * image id, the rest `<missing>` (docker's word for steps with no image of their own, as for any pulled or
 * loaded image).
 */
export function historyRows(
  img: Image,
  opts: { noTrunc: boolean; human?: boolean; layerSizes?: number[] },
): HistoryRow[] {
  const history = img.config.history?.length
    ? img.config.history
    : img.layers.map(() => ({ created: img.config.created, created_by: '', comment: '' }));
  let layer = 0;
  const rows = history.map((h) => {
    const i = 'empty_layer' in h && h.empty_layer ? -1 : layer++;
    const size = i < 0 ? 0 : (opts.layerSizes?.[i] ?? img.layers[i]?.size ?? 0);
    const createdBy = (h.created_by ?? '').replace(/\t/g, ' ');
    const created = h.created ? new Date(h.created) : undefined;
    return {
      Comment: h.comment ?? '',
      CreatedAt: created ? created.toISOString().replace(/\.\d+Z$/, 'Z') : '',
      CreatedBy: opts.noTrunc ? createdBy : ellipsis(createdBy, 45),
      CreatedSince: opts.human === false ? goTime(h.created) : ago(h.created) || 'N/A',
      ID: '<missing>',
      Size: opts.human === false ? String(size) : humanSize(size),
    };
  });
  rows.reverse();
  if (rows[0]) rows[0].ID = opts.noTrunc ? img.configDigest : img.configDigest.slice(7, 19);
  return rows;
}

/** The fields `docker images --format` templates name, for one row of `tsbuild images`. */
export function imageRow(r: ImageSummary, noTrunc: boolean): Record<string, string> {
  const id = noTrunc ? r.id : r.id.replace(/^sha256:/, '').slice(0, 12);
  const size = r.broken ? 'BROKEN' : humanSize(r.size);
  return {
    Containers: 'N/A',
    CreatedAt: goTimeString(r.created),
    CreatedSince: ago(r.created) || 'N/A',
    Digest: r.indexDigest ?? r.manifestDigest,
    ID: id,
    Repository: r.repository,
    SharedSize: 'N/A',
    Size: size,
    Tag: r.tag,
    UniqueSize: 'N/A',
    VirtualSize: size,
  };
}

/** Column headers of `--format 'table …'`, by field, as docker names them. */
export const imageHeaders: Record<string, string> = {
  Containers: 'CONTAINERS',
  CreatedAt: 'CREATED AT',
  CreatedSince: 'CREATED',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  SharedSize: 'SHARED SIZE',
  Size: 'SIZE',
  Tag: 'TAG',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};
export const historyHeaders: Record<string, string> = {
  Comment: 'COMMENT',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  CreatedSince: 'CREATED',
  ID: 'IMAGE',
  Size: 'SIZE',
};

// ---- images --filter ----------------------------------------------------------------------------------

export interface ImageFilter {
  reference: string[];
  label: string[];
  dangling?: boolean;
}

/** `--filter key=value` values, as docker takes them; a key docker or tsbuild does not know is an error. */
export function parseImageFilters(values: string[]): ImageFilter {
  const f: ImageFilter = { reference: [], label: [] };
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--filter "${v}": expected KEY=VALUE (reference, dangling, label)`);
    const key = v.slice(0, eq).trim().toLowerCase();
    const value = v.slice(eq + 1);
    if (key === 'reference') f.reference.push(value);
    else if (key === 'label') f.label.push(value);
    else if (key === 'dangling') {
      const b = { true: true, '1': true, false: false, '0': false }[value.toLowerCase()];
      if (b === undefined) throw new UsageError(`--filter: invalid filter 'dangling=[${value}]' (true or false)`);
      if (f.dangling !== undefined && f.dangling !== b) throw new UsageError('--filter: conflicting dangling values');
      f.dangling = b;
    } else if (['before', 'since', 'until'].includes(key))
      throw new UsageError(`--filter ${key}: not supported by tsbuild (reference, dangling, label are)`);
    else throw new UsageError(`--filter: invalid filter '${key}' (reference, dangling, label)`);
  }
  return f;
}

/** Go's path.Match, which docker's reference filter uses: `*` and `?` stop at `/`, `[...]` classes. */
export function globMatch(pattern: string, name: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) return false; // Go: ErrBadPattern, which docker treats as no match
      let cls = pattern.slice(i + 1, close);
      if (cls.startsWith('^')) cls = '^' + cls.slice(1).replace(/[\\\]]/g, '\\$&');
      else cls = cls.replace(/[\\\]^]/g, '\\$&');
      re += `(?!/)[${cls}]`;
      i = close;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`).test(name);
}
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Whether a row passes: reference patterns are ORed (docker matches `NAME:TAG` and `NAME`), labels
 * ANDed (`K` or `K=V`), and the keys ANDed together. tsbuild lists tags only, so nothing is dangling.
 */
export function matchesFilter(r: ImageSummary, f: ImageFilter): boolean {
  if (f.dangling === true) return false;
  if (f.reference.length) {
    const full = `${r.repository}:${r.tag}`;
    if (!f.reference.some((p) => globMatch(p, full) || globMatch(p, r.repository))) return false;
  }
  const labels = r.image?.config.config?.Labels ?? {};
  for (const l of f.label) {
    const eq = l.indexOf('=');
    const [k, v] = eq < 0 ? [l, undefined] : [l.slice(0, eq), l.slice(eq + 1)];
    if (!Object.hasOwn(labels, k)) return false;
    if (v !== undefined && labels[k] !== v) return false;
  }
  return true;
}
