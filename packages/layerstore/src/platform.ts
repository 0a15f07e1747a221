// Platforms, once: which manifest of an index is for which machine. The rule is containerd's default
// matcher (platforms.Only / Normalize, as the OCI image-spec's platform object means it): both sides are
// normalised (architecture aliases, arm's default variants), then os, architecture and variant must be
// equal. An entry with no platform object at all matches (containerd's FilterPlatforms keeps those too),
// so a single-image index without platforms (an OCI layout's index.json) still resolves.
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const nodeArch: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** The platform this process runs on (images built here are for it). */
export function hostPlatform(): { os: string; architecture: string } {
  return { os: 'linux', architecture: nodeArch[process.arch] ?? process.arch };
}

/** containerd's platforms.Normalize: lowercase, architecture aliases, default variants. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = undefined;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === undefined || variant === '8' || variant === 'v8') variant = 'v8';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  return variant === undefined ? { os, architecture: arch } : { os, architecture: arch, variant };
}

/** Whether an index entry's platform is the wanted one (see the rule above). */
export function platformMatches(want: Platform, entry: Platform | undefined): boolean {
  if (!entry) return true;
  if (typeof entry.os !== 'string' || typeof entry.architecture !== 'string') return false;
  const a = normalizePlatform(want);
  const b = normalizePlatform(entry);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/** The first entry (in the index's order) for the wanted platform. */
export function choosePlatform<T extends { platform?: Platform }>(
  entries: readonly T[],
  want: Platform,
): T | undefined {
  return entries.find((e) => platformMatches(want, e.platform));
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
