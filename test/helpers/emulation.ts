// Whether this machine runs arm64 executables (the tests of foreign platforms need it): qemu-aarch64
// registered with binfmt_misc, enabled, with the F flag (the interpreter opened at registration, so it
// works inside a sandbox's mount namespace). scripts/setup.sh --test installs and registers it.
import { readFileSync } from 'node:fs';

/** Why arm64 executables cannot run here, or undefined when they can. */
export function noArm64Emulation(): string | undefined {
  let entry: string;
  try {
    entry = readFileSync('/proc/sys/fs/binfmt_misc/qemu-aarch64', 'utf8');
  } catch {
    return 'no binfmt_misc handler qemu-aarch64 (scripts/setup.sh --test installs qemu-user-static and registers it)';
  }
  if (!/^enabled$/m.test(entry) || !/^flags: *\S*F/m.test(entry)) return 'qemu-aarch64 is disabled or lacks the F flag';
  return undefined;
}
