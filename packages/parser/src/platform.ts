// FROM --platform takes what containerd's platform parser takes, not just os/arch/variant as
// written: kept apart from planning so the normalisation rules can be read against containerd's.

const knownOS = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'illumos',
  'ios',
  'js',
  'linux',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'wasip1',
  'windows',
]);
const knownArch = new Set([
  '386',
  'amd64',
  'arm',
  'arm64',
  'loong64',
  'mips',
  'mips64',
  'mips64le',
  'mipsle',
  'ppc64',
  'ppc64le',
  'riscv64',
  's390x',
  'wasm',
]);

/**
 * containerd's platforms.Parse + Normalize, as BuildKit applies them to
 * `FROM --platform`: `x86_64` → amd64, `aarch64` → arm64 (v8 dropped), `armhf`
 * → arm/v7, bare `arm` → arm/v7, a lone arch or OS takes the rest from the
 * build platform. Undefined when the text is not a platform.
 */
export function normalizePlatform(text: string, buildPlatform: string): string | undefined {
  const parts = text.toLowerCase().split('/');
  if (parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) return undefined;
  const [buildOS = 'linux', buildArch = 'amd64'] = buildPlatform.split('/');
  let os: string, arch: string, variant: string;
  if (parts.length === 1) {
    if (knownOS.has(parts[0])) [os, arch, variant] = [parts[0], buildArch, ''];
    else [os, arch, variant] = [buildOS, parts[0], ''];
  } else {
    [os = '', arch = '', variant = ''] = parts;
  }
  if (os === 'macos') os = 'darwin';
  switch (arch) {
    case 'i386':
    case 'i486':
    case 'i586':
    case 'i686':
      arch = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (['8', 'v8', 'v8.0'].includes(variant)) variant = '';
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
      if (variant === '' || variant === '7') variant = 'v7';
      else if (['5', '6', '8'].includes(variant)) variant = 'v' + variant;
      break;
  }
  if (!knownOS.has(os) && parts.length === 1) return undefined;
  if (parts.length === 1 && !knownArch.has(arch) && !knownOS.has(parts[0])) return undefined;
  return [os, arch, variant].filter((p) => p !== '').join('/');
}
