// The private network (src/network.ts): what a run in it sees, one network shared by several runs,
// published ports, and that the holder and slirp4netns end with their owner, however it ends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { have, skip } from '@tsbuild/testkit';
import { dnsChoice, startNetwork, type PrivateNetwork } from '../src/index.js';
import { specFile } from '../src/spec.js';
import { sh, stateDir, tmp } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));

async function until(cond: () => boolean, ms = 10000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (cond()) return true;
  return cond();
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The holder's children (slirp4netns), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test("the holder's spec file is at EOF once read: no help from this process, whose event loop never runs", () => {
  const spec = Buffer.from('netholder=1\0helper=/usr/bin/slirp4netns\0helper=--mtu=65520\0');
  const fd = specFile(tmp, spec);
  if (fd === undefined) return skip(`no O_TMPFILE in ${tmp}`);
  try {
    // spawnSync runs no event loop: through a pipe (the pipe's EOF waits for this process's loop), cat would
    // wait for EOF until the bound below kills it.
    const r = spawnSync('sh', ['-c', 'cat <&3'], { stdio: ['ignore', 'pipe', 'inherit', fd], timeout: 20000 });
    assert.is(r.signal, null, 'cat reached EOF by itself');
    assert.ok(r.stdout.equals(spec), `the child read the whole spec: ${JSON.stringify(String(r.stdout))}`);
  } finally {
    closeSync(fd);
  }
});

test('a run in a private network has lo and eth0 with a default route, and no CAP_NET_RAW', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const probe = 'ls /sys/class/net; ip -4 route; grep CapBnd /proc/self/status; cat /etc/resolv.conf';
  const r = await sh(probe, { network: 'private' });
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^eth0\nlo\n/);
  assert.match(r.out, /^default via \d+\.\d+\.\d+\.2 dev eth0/m);
  const bnd = BigInt(`0x${r.out.match(/CapBnd:\s*([0-9a-f]+)/)![1]}`);
  assert.is(bnd & (1n << 13n), 0n, 'CAP_NET_RAW in the bounding set');
  assert.match(r.out, /^nameserver /m);
});

// resolv.conf from the host's; `forwarder` false means slirp4netns runs with --disable-dns (its
// forwarder would lead to the host's first IPv4 nameserver even on the host's loopback).
const plan = { address: '10.0.2.100', gateway: '10.0.2.2', dns: '10.0.2.3' };
const dnsRows: { host: string; ns: string[]; forwarder: boolean; warns: boolean }[] = [
  { host: 'nameserver 10.1.1.1\nnameserver 10.1.1.2\n', ns: ['10.0.2.3'], forwarder: true, warns: false },
  { host: 'nameserver 127.0.0.53\noptions edns0\n', ns: ['8.8.8.8', '8.8.4.4'], forwarder: false, warns: true },
  { host: 'nameserver 127.0.0.1\nnameserver 10.1.1.1\n', ns: ['10.1.1.1'], forwarder: false, warns: false },
  // libslirp takes the first IPv4 line: the forwarder would lead to 127.0.0.1 here.
  { host: 'nameserver fd00::1\nnameserver 127.0.0.1\n', ns: ['8.8.8.8', '8.8.4.4'], forwarder: false, warns: true },
  { host: 'nameserver 0.0.0.0\n', ns: ['8.8.8.8', '8.8.4.4'], forwarder: false, warns: true },
  { host: '# nothing\n', ns: ['8.8.8.8', '8.8.4.4'], forwarder: false, warns: true },
];
for (const row of dnsRows) {
  test(`dns: ${JSON.stringify(row.host)} -> ${row.ns.join(' ')}, forwarder ${row.forwarder ? 'on' : 'off'}`, () => {
    const d = dnsChoice(plan, row.host);
    assert.equal(
      [...d.resolvConf.matchAll(/^nameserver (\S+)$/gm)].map((m) => m[1]),
      row.ns,
    );
    assert.is(d.forwarder, row.forwarder);
    assert.is(d.warning !== undefined, row.warns, d.warning);
    if (row.host.includes('options')) assert.match(d.resolvConf, /^options edns0$/m);
  });
}

test('network none keeps CAP_NET_RAW (nothing to reach), host does not', async () => {
  const none = await sh('grep CapBnd /proc/self/status', { network: 'none' });
  const host = await sh('grep CapBnd /proc/self/status', { network: 'host' });
  const bit = (s: string) => BigInt(`0x${s.match(/CapBnd:\s*([0-9a-f]+)/)![1]}`) & (1n << 13n);
  assert.is(bit(none.out), 1n << 13n);
  assert.is(bit(host.out), 0n);
});

test("one network serves several runs: the same namespace, not the host's", async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const net = await startNetwork({ stateDir });
  try {
    const a = await sh('readlink /proc/self/ns/net', { network: 'private', netns: net });
    const b = await sh('readlink /proc/self/ns/net', { network: 'private', netns: net });
    assert.is(a.out, b.out);
    assert.is(a.out.trim(), readlinkSync(`/proc/${net.pid}/ns/net`));
    assert.is.not(a.out.trim(), readlinkSync('/proc/self/ns/net'));
  } finally {
    await net.close();
  }
});

test('close() ends the holder and slirp4netns', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const net = await startNetwork({ stateDir });
  const helpers = childrenOf(net.pid);
  assert.is(helpers.length, 1);
  assert.match(readFileSync(`/proc/${helpers[0]}/cmdline`, 'utf8'), /slirp4netns/);
  await net.close();
  assert.not.ok(alive(net.pid));
  assert.ok(await until(() => !alive(helpers[0])), 'slirp4netns outlived close()');
});

test('close({ wait: false }): nothing kept alive, the owner exits; the holder and slirp4netns end', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const script = join(tmp, 'net-nowait.mjs');
  // The holder is stopped before close(): a close that waited for it would never return, and the
  // script, whose event loop nothing else holds, would never exit.
  writeFileSync(
    script,
    `
    import { startNetwork } from ${JSON.stringify(join(here, '..', 'src', 'index.js'))};
    import { readFileSync } from 'node:fs';
    const net = await startNetwork({ stateDir: ${JSON.stringify(stateDir)} });
    const kids = readFileSync('/proc/' + net.pid + '/task/' + net.pid + '/children', 'utf8').trim();
    console.log(net.pid + ' ' + kids);
    process.kill(net.pid, 'SIGSTOP');
    await net.close({ wait: false });
  `,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const exited = await until(() => child.exitCode !== null);
  const pids = out.trim().split(/\s+/).map(Number);
  for (const p of pids.filter(Boolean)) process.kill(p, 'SIGCONT');
  assert.ok(exited, 'close({ wait: false }) waited for the holder (or kept the process alive)');
  assert.is(child.exitCode, 0);
  assert.is(pids.length, 2, out);
  // Orphans once their owner is gone: a zombie not yet reaped by init counts as ended.
  const ended = (p: number) => {
    try {
      return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8'));
    } catch {
      return true;
    }
  };
  assert.ok(await until(() => pids.every(ended)), `left running: ${pids.filter((p) => !ended(p))}`);
});

test('close({ wait: false }) with a published port still waits: the port is free once it resolves', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  const ports = [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' as const }];
  const net = await startNetwork({ stateDir, ports });
  const helpers = childrenOf(net.pid);
  await net.close({ wait: false });
  assert.not.ok(alive(net.pid), 'the holder is gone');
  assert.ok(
    helpers.every((p) => !alive(p)),
    'slirp4netns is gone',
  );
  const again = createServer().listen(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => again.once('listening', resolve).once('error', reject));
  await new Promise((r) => again.close(r));
});

test('SIGKILL of the owning Node process ends the holder and slirp4netns', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const script = join(tmp, 'net-victim.mjs');
  writeFileSync(
    script,
    `
    import { startNetwork } from ${JSON.stringify(join(here, '..', 'src', 'index.js'))};
    import { readFileSync } from 'node:fs';
    const net = await startNetwork({ stateDir: ${JSON.stringify(stateDir)} });
    const kids = readFileSync('/proc/' + net.pid + '/task/' + net.pid + '/children', 'utf8').trim();
    console.log(net.pid + ' ' + kids);
    setInterval(() => {}, 1000);
  `,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  assert.ok(await until(() => out.includes('\n')), 'the victim never reported');
  const pids = out.trim().split(/\s+/).map(Number);
  assert.is(pids.length, 2, out);
  child.kill('SIGKILL');
  assert.ok(await until(() => pids.every((p) => !alive(p))), `left running: ${pids.filter(alive)}`);
});

test('ports: a published port reaches a server in the run; a port in use is a clear error', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const busy = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
  const taken = (busy.address() as { port: number }).port;
  try {
    const ports = [{ hostIp: '127.0.0.1', hostPort: taken, containerPort: 80, protocol: 'tcp' as const }];
    const err = await startNetwork({ stateDir, ports }).then(
      (n: PrivateNetwork) => n.close().then(() => undefined),
      (e: Error) => e,
    );
    assert.ok(err, 'publishing a port in use succeeded');
    assert.match(err.message, new RegExp(`cannot publish 127\\.0\\.0\\.1:${taken} -> 80/tcp`));
  } finally {
    busy.close();
  }
  const free = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => free.once('listening', r));
  const port = (free.address() as { port: number }).port;
  await new Promise((r) => free.close(r));
  const ports = [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 7000, protocol: 'tcp' as const }];
  const net = await startNetwork({ stateDir, ports });
  try {
    const server = sh('echo PUBLISHED | nc -l -p 7000', { network: 'private', netns: net });
    let got = '';
    for (const end = Date.now() + 15000; !got.includes('PUBLISHED') && Date.now() < end; await sleep(100)) {
      got = await new Promise<string>((resolve) => {
        const c = connect(port, '127.0.0.1');
        let d = '';
        c.setEncoding('utf8').on('data', (s: string) => {
          d += s;
        });
        c.on('error', () => resolve(''));
        c.on('close', () => resolve(d));
        c.on('connect', () => c.end());
      });
    }
    assert.is(got, 'PUBLISHED\n');
    assert.is((await server).code, 0);
  } finally {
    await net.close();
  }
});

test.run();
