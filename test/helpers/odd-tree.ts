// A context tree with what a COPY of a directory must carry exactly: hard links (within the tree), symlinks
// (relative, absolute, dangling, long), empty directories, odd modes (setuid, setgid, sticky, 0600, 0711), a
// name long enough for a PAX header, a non-ASCII name, and a file of several tar chunks (a layer of more than
// 1 MiB, hashed on a worker thread). Every time is fixed, so the layer a COPY makes of it has one digest.
import { chmodSync, linkSync, lutimesSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function makeOddTree(root: string): void {
  const p = (rel: string) => join(root, rel);
  const dirs: [string, number][] = [
    ['', 0o755],
    ['bin', 0o755],
    ['empty', 0o711],
    ['deep/er/est', 0o750],
    ['setgid', 0o2775],
    ['sticky', 0o1777],
    ['private', 0o700],
  ];
  for (const [d] of dirs) mkdirSync(p(d), { recursive: true });
  const files: [string, string | Buffer, number][] = [
    ['bin/su', 'pretend setuid\n', 0o4755],
    ['bin/tool', 'a tool\n', 0o755],
    ['secret', 'owner only\n', 0o600],
    ['empty-file', '', 0o644],
    ['setgid/file', 'in a setgid dir\n', 0o2755],
    ['private/inside', 'x\n', 0o640],
    ['ünïcödé-名前', 'unicode\n', 0o644],
    ['deep/er/est/' + 'n'.repeat(120), 'a long name\n', 0o644],
    ['big', Buffer.alloc(2_500_000 + 7, 'b'), 0o644],
  ];
  for (const [f, content, mode] of files) {
    writeFileSync(p(f), content);
    chmodSync(p(f), mode);
  }
  linkSync(p('bin/su'), p('bin/su-link'));
  linkSync(p('bin/su'), p('deep/su-link2'));
  symlinkSync('../bin/tool', p('deep/rel-link'));
  symlinkSync('/etc/passwd', p('abs-link'));
  symlinkSync('does/not/exist', p('dangling'));
  symlinkSync('t'.repeat(150), p('long-target'));
  // Times last, deepest first, so that making children does not move them.
  const t = (n: number) => new Date((1_600_000_000 + n) * 1000);
  for (const l of ['deep/rel-link', 'abs-link', 'dangling', 'long-target']) lutimesSync(p(l), t(1), t(1));
  for (const [f] of files) utimesSync(p(f), t(2), t(2));
  for (const [d, mode] of [...dirs].reverse()) {
    chmodSync(p(d), mode);
    utimesSync(p(d), t(3), t(3));
  }
}
