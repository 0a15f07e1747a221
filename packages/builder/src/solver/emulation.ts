// Foreign platforms (--platform linux/arm64 on an amd64 host): RUN steps run the platform's
// executables through the kernel's binfmt_misc, which hands them to a QEMU user-mode emulator
// (Debian's qemu-user-static registers qemu-aarch64 etc.). tsbuild runs nothing itself to emulate:
// it only checks that a handler is there and usable from inside a step's root, so a build that
// cannot work says why before it starts, not with "exec format error" halfway.
import { readFileSync } from 'node:fs';
import { normalizePlatform, type Platform } from '@tsbuild/layerstore';

const BinfmtDir = '/proc/sys/fs/binfmt_misc';

/** QEMU's name for an OCI architecture (the binfmt handler is qemu-NAME). */
const qemuArch: Record<string, string> = {
  amd64: 'x86_64',
  arm64: 'aarch64',
  arm: 'arm',
  '386': 'i386',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64el',
};

/** Whether a platform is this machine's own (any spelling: amd64, linux/x86_64, ...). */
export function isNative(p: Platform, host: Platform): boolean {
  const a = normalizePlatform(p);
  const b = normalizePlatform(host);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/**
 * Why RUN steps of platform p cannot run on this machine, or undefined when a binfmt_misc handler
 * will run them. The handler needs the F flag: the kernel then opens the emulator when it is
 * registered, so it works inside a step's own root, where no /usr/libexec/qemu-binfmt exists.
 */
export function emulationProblem(p: Platform): string | undefined {
  const arch = normalizePlatform(p).architecture;
  const name = qemuArch[arch];
  if (!name) return `no QEMU user emulator is known for architecture ${arch}`;
  let status: string;
  try {
    status = readFileSync(`${BinfmtDir}/status`, 'utf8').trim();
  } catch {
    return `${BinfmtDir} is not mounted (mount -t binfmt_misc binfmt_misc ${BinfmtDir}, as root)`;
  }
  if (status !== 'enabled') return `binfmt_misc is ${status} (echo 1 > ${BinfmtDir}/status)`;
  let entry: string;
  try {
    entry = readFileSync(`${BinfmtDir}/qemu-${name}`, 'utf8');
  } catch {
    return (
      `no binfmt_misc handler for ${name} (apt-get install qemu-user-static; it registers ` +
      `qemu-${name} through systemd-binfmt, or: /usr/lib/systemd/systemd-binfmt /usr/lib/binfmt.d/qemu-${name}.conf)`
    );
  }
  if (!/^enabled$/m.test(entry)) return `the binfmt_misc handler qemu-${name} is disabled`;
  const flags = /^flags: *(\S*)$/m.exec(entry)?.[1] ?? '';
  if (!flags.includes('F'))
    return `the binfmt_misc handler qemu-${name} lacks the F flag: its emulator would not be found inside a step`;
  return undefined;
}
