// A tree with every kind of entry a layer can carry, for round-trip tests.
import {
  chmodSync,
  lchownSync,
  linkSync,
  mkdirSync,
  symlinkSync,
  utimesSync,
  lutimesSync,
  writeFileSync,
  chownSync,
} from 'node:fs';
import { join } from 'node:path';
import { mknod, S_IFBLK, S_IFCHR, S_IFIFO, setXattr } from '@tsbuild/sys';

/** security.capability v2, effective, permitted = cap_setuid (bit 7: byte 0x80, not UTF-8) + cap_net_bind_service. */
export const CAP_BLOB = Buffer.from([
  0x01, 0x00, 0x00, 0x02, 0x80, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);

const T = 1_600_000_000;

export function makeEveryKind(root: string, opts: { order?: 'forward' | 'reverse' } = {}): void {
  const steps: (() => void)[] = [];
  const p = (rel: string) => join(root, rel);
  const dir = (rel: string, mode = 0o755, uid = 0, gid = 0) =>
    steps.push(() => {
      mkdirSync(p(rel), { recursive: true });
      chownSync(p(rel), uid, gid);
      chmodSync(p(rel), mode);
    });
  const file = (rel: string, content: string | Buffer, mode = 0o644, uid = 0, gid = 0) =>
    steps.push(() => {
      writeFileSync(p(rel), content);
      chownSync(p(rel), uid, gid);
      chmodSync(p(rel), mode);
    });

  dir('bin');
  dir('etc');
  dir('empty-dir', 0o700, 1000, 1000);
  dir('tmp', 0o1777);
  dir('srv/deep/er/still', 0o750, 33, 33);
  dir('setgid-dir', 0o2775, 0, 50);
  file('bin/su', 'pretend setuid binary\n', 0o4755);
  file('bin/wall', 'pretend setgid binary\n', 0o2755, 0, 5);
  file('bin/ping', 'has a capability\n', 0o755);
  file('etc/empty', '');
  file('etc/big', Buffer.alloc(3 * 1024 * 1024 + 17, 'x'), 0o600, 1234, 5678);
  file('name with spaces', 'spaces\n');
  file('ünïcödé-名前', 'unicode\n');
  file('-leading-dash', 'dash\n');
  file('srv/deep/er/still/' + 'n'.repeat(120), 'long name (PAX path)\n', 0o640, 65534, 65534);
  file('srv/high-ids', 'uid/gid past ustar octal\n', 0o644, 3_000_000, 4_000_000);
  file('srv/xattrs', 'user xattrs\n');
  steps.push(() => setXattr(p('srv/xattrs'), 'user.comment', Buffer.from('hello')));
  steps.push(() => setXattr(p('srv/xattrs'), 'user.binary', Buffer.from([0, 0xff, 0x80, 0x0a, 0x3d])));
  steps.push(() => setXattr(p('bin/ping'), 'security.capability', CAP_BLOB));
  steps.push(() => setXattr(p('empty-dir'), 'user.dir-attr', Buffer.from('d')));
  steps.push(() => symlinkSync('/etc/passwd', p('abs-link')));
  steps.push(() => symlinkSync('../bin/su', p('etc/rel-link')));
  steps.push(() => symlinkSync('does/not/exist', p('dangling')));
  steps.push(() => symlinkSync('x'.repeat(150), p('long-target-link')));
  steps.push(() => lchownSync(p('etc/rel-link'), 7, 8));
  steps.push(() => linkSync(p('bin/su'), p('bin/su-hardlink')));
  steps.push(() => linkSync(p('bin/su'), p('srv/su-hardlink2')));
  steps.push(() => {
    mknod(p('fifo'), S_IFIFO, 0);
    chmodSync(p('fifo'), 0o620);
  });
  steps.push(() => {
    mknod(p('null-ish'), S_IFCHR, 0, 1, 3);
    chmodSync(p('null-ish'), 0o666);
  });
  steps.push(() => {
    mknod(p('blockdev'), S_IFBLK, 0, 7, 0);
    chmodSync(p('blockdev'), 0o660);
    chownSync(p('blockdev'), 0, 6);
  });
  // mtimes last so that creating children does not move them.
  steps.push(() => {
    for (const rel of ['bin/su', 'etc/big', 'etc/empty', 'srv/xattrs', 'fifo', 'ünïcödé-名前'])
      utimesSync(p(rel), T, T);
    lutimesSync(p('abs-link'), T + 1, T + 1);
    for (const rel of [
      'srv/deep/er/still',
      'srv/deep/er',
      'srv/deep',
      'srv',
      'bin',
      'etc',
      'empty-dir',
      'tmp',
      'setgid-dir',
    ])
      utimesSync(p(rel), T + 2, T + 2);
  });
  const dirSteps = steps.slice(0, 6),
    rest = steps.slice(6, -1),
    last = steps[steps.length - 1];
  for (const s of dirSteps) s();
  for (const s of opts.order === 'reverse' ? [...rest].reverse().filter((_, i, a) => a) : rest) {
    try {
      s();
    } catch (e) {
      if (opts.order !== 'reverse') throw e;
    }
  }
  if (opts.order === 'reverse')
    for (const s of rest) {
      try {
        s();
      } catch {
        /* already made */
      }
    }
  last();
}
