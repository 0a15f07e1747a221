// Tags live in the store's OCI index.json, one manifest descriptor per reference, annotated with
// org.opencontainers.image.ref.name and io.containerd.image.name = the fully qualified reference
// (docker.io/library/app:1). Every change is a read-modify-write of index.json under the exclusive
// `index` lock, written atomically (temp file, fsync, rename, fsync dir), so concurrent tsbuild
// processes never lose a tag and readers never see a torn file (they read without the lock).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatReference, parseReference } from './reference.js';
import { MediaType, StoreError, type Descriptor } from './types.js';
import { checkDigest, writeFileAtomic } from './fsutil.js';
import type { LockManager } from './lock.js';

export const RefNameAnnotation = 'org.opencontainers.image.ref.name';
export const ContainerdNameAnnotation = 'io.containerd.image.name';

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface TagEntry {
  /** Fully qualified reference, e.g. docker.io/library/app:1. */
  name: string;
  descriptor: Descriptor;
}

/** Normalise what a person typed (app:1) to the stored key (docker.io/library/app:1). */
export function normalizeRef(ref: string): string {
  return formatReference(parseReference(ref));
}

export function emptyIndex(): OciIndex {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
}

export class Tags {
  readonly indexPath: string;
  constructor(
    readonly root: string,
    private readonly locks: LockManager,
    private readonly tmpDir: string,
  ) {
    this.indexPath = join(root, 'index.json');
  }

  async readIndex(): Promise<OciIndex> {
    let text: string;
    try {
      text = readFileSync(this.indexPath, 'utf8'); // SmallFileIO (fsutil.ts)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex();
      throw e;
    }
    try {
      const idx = JSON.parse(text) as OciIndex;
      if (!Array.isArray(idx.manifests)) throw new Error('no manifests array');
      return idx;
    } catch (e) {
      throw new StoreError(
        'corrupt',
        `${this.indexPath} is not a valid OCI index: ${(e as Error).message}`,
        this.indexPath,
      );
    }
  }

  async list(): Promise<TagEntry[]> {
    const idx = await this.readIndex();
    const out: TagEntry[] = [];
    for (const d of idx.manifests) {
      const name = d.annotations?.[ContainerdNameAnnotation] ?? d.annotations?.[RefNameAnnotation];
      if (name) out.push({ name, descriptor: d });
    }
    return out;
  }

  async get(ref: string): Promise<Descriptor | undefined> {
    const name = normalizeRef(ref);
    return (await this.list()).find((t) => t.name === name)?.descriptor;
  }

  /** Point ref at desc (replacing what it pointed at). Returns the stored descriptor. */
  async set(ref: string, desc: Descriptor): Promise<Descriptor> {
    const name = normalizeRef(ref);
    checkDigest(desc.digest);
    const stored: Descriptor = {
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(desc.platform ? { platform: desc.platform } : {}),
      annotations: { ...(desc.annotations ?? {}), [RefNameAnnotation]: name, [ContainerdNameAnnotation]: name },
    };
    // Re-tagging with what the tag already holds (every cached rebuild does) writes nothing.
    const current = (await this.readIndex()).manifests.find((d) => nameOf(d) === name);
    if (current && JSON.stringify(current) === JSON.stringify(stored)) return stored;
    await this.update((idx) => {
      idx.manifests = idx.manifests.filter((d) => nameOf(d) !== name);
      idx.manifests.push(stored);
    });
    return stored;
  }

  /**
   * Remove a tag; returns whether it existed. Blobs stay until the next prune. With `ifDigest`, only
   * while the tag still points at that digest (check --repair: not a tag set anew meanwhile).
   */
  async delete(ref: string, ifDigest?: string): Promise<boolean> {
    const name = normalizeRef(ref);
    let found = false;
    await this.update((idx) => {
      const before = idx.manifests.length;
      const other = (d: Descriptor) => ifDigest !== undefined && d.digest !== ifDigest;
      idx.manifests = idx.manifests.filter((d) => nameOf(d) !== name || other(d));
      found = idx.manifests.length !== before;
    });
    return found;
  }

  private async update(fn: (idx: OciIndex) => void): Promise<void> {
    await this.locks.with('index', async () => {
      const idx = await this.readIndex();
      fn(idx);
      // By UTF-16 code unit, not localeCompare: the order is then the same under every locale, and
      // the first localeCompare of a process loads ICU's collator (7 ms of every build that tags).
      idx.manifests.sort((a, b) => byCodeUnit(nameOf(a) ?? '', nameOf(b) ?? ''));
      await writeFileAtomic(this.indexPath, JSON.stringify(idx, null, 2) + '\n', this.tmpDir);
    });
  }
}

function nameOf(d: Descriptor): string | undefined {
  return d.annotations?.[ContainerdNameAnnotation] ?? d.annotations?.[RefNameAnnotation];
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
