// --insecure-registry as docker's daemon means it: HTTPS without verifying the certificate, then
// plain HTTP when the server does not speak TLS; loopback (127.0.0.0/8, localhost) is insecure
// without the flag; CIDRs match a registry named by an IP literal; bad values exit 2 naming the
// flag. Real docker-registries serve a self-signed certificate (or plain HTTP) on 127.0.0.2 and
// on a local non-loopback address, where docker verifies certificates unless told otherwise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { outsideAddress, selfSignedCertificate, skip, startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { cleanup, context, ok, tempDir, tsbuild } from './helpers/cli.js';

const dirs: string[] = [];
const temp = (p: string) => {
  const d = tempDir(p);
  dirs.push(d);
  return d;
};
/** An address of this machine that is not loopback: docker verifies certificates there. */
const outside = outsideAddress();

const registries: TestRegistry[] = [];
let source = ''; // a store holding the image every row pushes
const regs: Record<string, string> = {};

test.before(async () => {
  const certs = temp('insecure-certs');
  const tls = selfSignedCertificate(certs, ['127.0.0.2', ...(outside ? [outside] : [])]);
  const start = async (name: string, o: Parameters<typeof startRegistry>[0]) => {
    const r = await startRegistry(o);
    registries.push(r);
    regs[name] = r.host;
  };
  await start('tls127', { tls, address: '127.0.0.2' });
  await start('plain127', { address: '127.0.0.3' });
  if (outside) {
    await start('tlsOutside', { tls, address: outside });
    await start('plainOutside', { address: outside });
  }
  source = temp('insecure-source');
  ok(
    tsbuild(['build', '-q', '-t', 'insecure/app:1', context({ Dockerfile: 'FROM scratch\nCOPY a /\n', a: 'a\n' })], {
      root: source,
    }),
  );
});

test.after(async () => {
  for (const r of registries) await r.stop();
  cleanup(...dirs);
});

const rows: { name: string; reg: string; flags: (host: string) => string[]; works: boolean; error?: RegExp }[] = [
  { name: 'self-signed HTTPS on 127.0.0.2, no flag (loopback)', reg: 'tls127', flags: () => [], works: true },
  { name: 'plain HTTP on 127.0.0.3, no flag (loopback)', reg: 'plain127', flags: () => [], works: true },
  {
    name: 'self-signed HTTPS, --insecure-registry HOST:PORT',
    reg: 'tlsOutside',
    flags: (h) => ['--insecure-registry', h],
    works: true,
  },
  {
    name: 'self-signed HTTPS, --insecure-registry CIDR',
    reg: 'tlsOutside',
    flags: (h) => ['--insecure-registry', `${h.split(':')[0]}/24`],
    works: true,
  },
  {
    name: 'plain HTTP, --insecure-registry HOST:PORT',
    reg: 'plainOutside',
    flags: (h) => ['--insecure-registry', h],
    works: true,
  },
  {
    name: 'plain HTTP, --insecure-registry http://HOST:PORT (the scheme dropped, as docker does)',
    reg: 'plainOutside',
    flags: (h) => ['--insecure-registry', `http://${h}`],
    works: true,
  },
  {
    name: 'self-signed HTTPS, no flag',
    reg: 'tlsOutside',
    flags: () => [],
    works: false,
    error: /TLS certificate rejected/,
  },
  {
    name: 'self-signed HTTPS, another port flagged',
    reg: 'tlsOutside',
    flags: (h) => ['--insecure-registry', `${h.split(':')[0]}:1`],
    works: false,
    error: /TLS certificate rejected/,
  },
  {
    name: 'plain HTTP, no flag',
    reg: 'plainOutside',
    flags: () => [],
    works: false,
    error: /answered in plain HTTP \(--insecure-registry /,
  },
];

for (const row of rows) {
  test(`push then pull: ${row.name} → ${row.works ? 'works' : 'refused'}`, () => {
    const host = regs[row.reg];
    if (!host) return skip('no local non-loopback IPv4 address', { required: false });
    const ref = `${host}/insecure/app:${rows.indexOf(row)}`;
    ok(tsbuild(['tag', 'insecure/app:1', ref], { root: source }));
    const pushed = tsbuild(['push', ...row.flags(host), ref], { root: source });
    if (!row.works) {
      assert.is(pushed.code, 1, pushed.stderr);
      assert.match(pushed.stderr, row.error!);
      assert.not.match(pushed.stderr, /\n\s+at /, 'no stack trace');
      return;
    }
    assert.is(pushed.code, 0, pushed.stderr);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1];
    const root = temp('insecure-pull');
    const pulled = tsbuild(['pull', ...row.flags(host), ref], { root });
    assert.is(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, `Digest: ${digest}`);
  });
}

test('--insecure-registry values are checked as dockerd checks them: exit 2 naming the flag and value', () => {
  const root = temp('insecure-values');
  const cases: { value: string; error: string }[] = [
    { value: '', error: '--insecure-registry "": invalid host ""' },
    { value: 'ftp://x', error: `--insecure-registry "ftp://x": should not contain '://'` },
    { value: 'x:99999', error: '--insecure-registry "x:99999": invalid port "99999"' },
    { value: 'a_b', error: '--insecure-registry "a_b": invalid host "a_b"' },
    { value: 'host:5000/path', error: '--insecure-registry "host:5000/path": invalid host "host"' },
    { value: '-x', error: '--insecure-registry "-x": invalid index name (-x). Cannot begin or end with a hyphen' },
  ];
  const commands = [
    ['pull', 'x.example/a:1'],
    ['push', 'x.example/a:1'],
    ['build', '--push', '-t', 'x.example/a:1', '.'],
    ['login', '-u', 'u', '-p', 'p', 'x.example'],
  ];
  for (const c of cases)
    for (const cmd of commands) {
      const r = tsbuild([cmd[0], `--insecure-registry=${c.value}`, ...cmd.slice(1)], { root });
      assert.is(r.code, 2, `${cmd[0]} ${c.value}\n${r.stderr}`);
      assert.ok(r.stderr.includes(c.error), `${cmd[0]} ${c.value}\n${r.stderr}`);
      assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    }
});

test.run();
