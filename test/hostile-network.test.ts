// Hostile network rows: what a RUN step or a container can reach of the host's network. The test
// runs the host's services itself: a secret on 127.0.0.1 (TCP, and UDP on the same port), a secret
// on an abstract unix socket, and an "outbound" server on a non-loopback address of the host (this
// machine reaches nothing else; a real network is reached the same way, through pasta). A static
// probe (fixtures/netprobe/probe.c) does what busybox cannot: abstract sockets, packet sockets, and
// frames hand-made for 127.0.0.1 that bypass the kernel's routing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, connect, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import {
  Base,
  cleanup,
  command,
  context,
  ok,
  repo,
  storeWithBase,
  tempDir,
  tsbuildAsync,
  type Result,
} from './helpers/cli.js';

const root = storeWithBase();
const dirs: string[] = [root];
const Secret = `SECRET-${randomBytes(6).toString('hex')}`;
const Abstract = `tsbuild-hostile-${randomBytes(6).toString('hex')}`;
const Image = 'hostile/netprobe:1';
const servers: (Server | Socket)[] = [];
/** What reached the host's loopback: TCP connections and UDP datagrams to the secret's port. */
const reached = { tcp: 0, udp: 0 };
let port = 0;
let outbound: { ip: string; port: number } | undefined;
let probeBuilt = false;

/** The CLI without blocking this process's event loop (the servers live in it). */
function cli(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const c = tsbuildAsync(args, { root });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    c.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    c.on('close', (code, sig) => resolve({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), stdout, stderr }));
  });
}

function listen<T extends Server>(s: T, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    (s.listen as (...a: unknown[]) => void)(...args, () => resolve(s));
  });
}

function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

test.before(async () => {
  const secret = (s: import('node:net').Socket) => {
    reached.tcp++;
    s.on('error', () => {
      /* a half-made connection (an injected SYN) is reset */
    });
    s.end(`${Secret}\n`);
  };
  const tcp = await listen(createServer(secret), 0, '127.0.0.1');
  servers.push(tcp);
  port = (tcp.address() as { port: number }).port;
  const udp = createSocket('udp4');
  udp.on('message', () => {
    reached.udp++;
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', r));
  servers.push(udp);
  servers.push(
    await listen(
      createServer((s) => s.on('error', () => {}).end(`${Secret}\n`)),
      `\0${Abstract}`,
    ),
  );
  const ip = hostAddress();
  if (ip) {
    const out = await listen(
      createServer((s) => s.end('OUTBOUND-OK\n')),
      0,
      ip,
    );
    servers.push(out);
    outbound = { ip, port: (out.address() as { port: number }).port };
  }
  if (!have('cc')) return;
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY probe /probe\n` });
  dirs.push(ctx);
  const src = join(repo, 'fixtures', 'netprobe', 'probe.c');
  const cc = spawnSync('cc', ['-static', '-O2', '-o', join(ctx, 'probe'), src], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot compile the probe: ${cc.stderr}`);
  ok(await cli(['build', '-q', '-t', Image, ctx]));
  probeBuilt = true;
});

test.after(() => {
  for (const s of servers) s.close();
  cleanup(...dirs);
});

// One probe per row: a shell command (stdout is the evidence) and what must (not) be in it.
// `default` rows run in the default network; `host` rows with --network host (allowed).
interface Row {
  name: string;
  sh: string;
  expect: (out: string) => void;
  modes: ('default' | 'host')[];
}
const capNetRaw = (out: string) => {
  const m = out.match(/CapEff:\s*([0-9a-f]+)/);
  assert.ok(m, out);
  assert.is(BigInt(`0x${m[1]}`) & (1n << 13n), 0n, `CAP_NET_RAW is in the effective set: ${out}`);
};
const rows = (): Row[] => [
  {
    name: 'host loopback (TCP) is unreachable',
    modes: ['default'],
    sh: `nc -w 3 127.0.0.1 ${port} </dev/null; echo "nc=$?"`,
    expect: (o) => assert.not.match(o, Secret),
  },
  {
    name: 'the gateway does not lead to the host loopback',
    modes: ['default'],
    sh: `nc -w 3 $(ip route | awk '/^default/{print $3}') ${port} </dev/null; echo "nc=$?"`,
    expect: (o) => assert.not.match(o, Secret),
  },
  {
    name: "the host's abstract unix sockets are unreachable",
    modes: ['default'],
    sh: `/probe unix ${Abstract}`,
    expect: (o) => {
      assert.not.match(o, Secret);
      assert.match(o, /^fail connect/);
    },
  },
  {
    name: 'no packet socket (CAP_NET_RAW is gone)',
    modes: ['default', 'host'],
    sh: '/probe packet',
    expect: (o) => assert.match(o, /^fail packet socket: Operation not permitted/),
  },
  {
    name: 'frames hand-made for 127.0.0.1 cannot be sent',
    modes: ['default'],
    sh: `/probe inject eth0 ${port}`,
    expect: (o) => assert.match(o, /^fail packet socket/),
  },
  {
    name: 'CAP_NET_RAW is not in the capability set',
    modes: ['default', 'host'],
    sh: 'grep CapEff /proc/self/status',
    expect: capNetRaw,
  },
  {
    name: "resolv.conf points at the network's DNS forwarder",
    modes: ['default'],
    sh: 'cat /etc/resolv.conf',
    expect: (o) => assert.match(o, /^nameserver \d+\.\d+\.\d+\.3$/m),
  },
];

function script(mode: 'default' | 'host'): string {
  return rows()
    .filter((r) => r.modes.includes(mode))
    .map((r, i) => `echo "== ${i}"; ${r.sh} 2>&1`)
    .join('; ');
}

function check(mode: 'default' | 'host', out: string): void {
  const parts = out.split(/^== \d+\n/m).slice(1);
  const mine = rows().filter((r) => r.modes.includes(mode));
  assert.is(parts.length, mine.length, out);
  mine.forEach((r, i) => {
    try {
      r.expect(parts[i]);
    } catch (e) {
      throw new Error(`${mode}: ${r.name}: ${(e as Error).message}\n${parts[i]}`);
    }
  });
}

async function buildOutput(mode: 'default' | 'host'): Promise<string> {
  const ctx = context({ Dockerfile: `FROM ${Image}\nRUN (${script(mode)}) > /out.txt\n` });
  const out = tempDir('net-out');
  dirs.push(ctx, out);
  const net = mode === 'host' ? ['--network', 'host', '--allow', 'network.host'] : [];
  ok(await cli(['build', '--no-cache', ...net, '-o', `type=local,dest=${out}`, ctx]));
  return readFileSync(join(out, 'out.txt'), 'utf8');
}

for (const mode of ['default', 'host'] as const) {
  test(`RUN step, ${mode} network: host loopback, abstract sockets, raw sockets are out of reach`, async () => {
    if (!probeBuilt) return skip('no C compiler (cc) for the network probe');
    const out = await buildOutput(mode);
    assert.equal(reached, { tcp: 0, udp: 0 }, `something reached the host loopback:\n${out}`);
    check(mode, out);
  });

  test(`tsbuild run, ${mode} network: the same rows`, async () => {
    if (!probeBuilt) return skip('no C compiler (cc) for the network probe');
    const net = mode === 'host' ? ['--network', 'host'] : [];
    const r = await cli(['run', '--rm', ...net, Image, 'sh', '-c', script(mode)]);
    assert.is(r.code, 0, r.stderr);
    assert.equal(reached, { tcp: 0, udp: 0 }, `something reached the host loopback:\n${r.stdout}`);
    check(mode, r.stdout);
  });
}

test('tsbuild exec into a default-network container has no packet socket either', async () => {
  if (!probeBuilt) return skip('no C compiler (cc) for the network probe');
  const name = `exec-${randomBytes(3).toString('hex')}`;
  ok(await cli(['run', '-d', '--name', name, Image, 'sleep', '300']));
  try {
    const r = await cli(['exec', name, '/probe', 'packet']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^fail packet socket: Operation not permitted/);
  } finally {
    await cli(['rm', '-f', name]);
  }
});

test('default network: outbound connections reach a server on a host address (not loopback)', async () => {
  if (!outbound) return skip('this machine has no non-loopback IPv4 address', { required: false });
  const sh = `nc -w 5 ${outbound.ip} ${outbound.port} </dev/null`;
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN ${sh} > /out.txt\n` });
  const out = tempDir('net-out');
  dirs.push(ctx, out);
  ok(await cli(['build', '--no-cache', '-o', `type=local,dest=${out}`, ctx]));
  assert.is(readFileSync(join(out, 'out.txt'), 'utf8'), 'OUTBOUND-OK\n');
  const r = await cli(['run', '--rm', Base, 'sh', '-c', sh]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'OUTBOUND-OK\n');
});

/**
 * The CLI in a mount namespace of its own where /etc/resolv.conf says `text`: the host's resolver
 * as tsbuild and slirp4netns see it, without touching the machine's file.
 */
function cliWithResolvConf(text: string, args: string[]): Promise<Result> {
  const file = join(tempDir('resolv'), 'resolv.conf');
  dirs.push(join(file, '..'));
  writeFileSync(file, text);
  const env = { ...process.env, CI: 'true', TSBUILD_ROOT: root };
  const sh = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"';
  const c = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh, 'sh', file, command, ...args], {
    cwd: repo,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    c.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

// slirp4netns sends whatever reaches the namespace's DNS address (x.x.x.3), TCP or UDP port 53,
// to the first IPv4 nameserver of the host's resolv.conf, --disable-host-loopback or not. When
// that is a resolver on the host's loopback (dnsmasq, unbound, systemd-resolved's 127.0.0.53),
// a RUN step could talk to it although resolv.conf in the sandbox does not name it.
test("a resolver on the host's loopback is not reachable through the DNS forwarder address", async () => {
  if (!have('unshare')) return skip('unshare (util-linux) is needed to give the CLI its own resolv.conf');
  const b = randomBytes(3);
  const ip = `127.${(b[0] % 254) + 1}.${(b[1] % 254) + 1}.${(b[2] % 254) + 1}`;
  const hits = { tcp: 0, udp: 0 };
  const tcp = await listen(
    createServer((s) => {
      hits.tcp++;
      s.on('error', () => {}).end(`${Secret}\n`);
    }),
    53,
    ip,
  );
  const udp = createSocket('udp4');
  udp.on('message', () => {
    hits.udp++;
  });
  await new Promise<void>((r) => udp.bind(53, ip, r));
  servers.push(tcp, udp);
  const sh =
    'gw=$(ip route | awk \'/^default/{print $3}\'); dns=${gw%.*}.3; echo "dns=$dns"; ' +
    'nc -w 3 $dns 53 </dev/null; echo "nc=$?"; timeout 3 nslookup example.org $dns; cat /etc/resolv.conf';
  const r = await cliWithResolvConf(`nameserver ${ip}\n`, ['run', '--rm', Base, 'sh', '-c', sh]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^dns=\d+\.\d+\.\d+\.3$/m);
  assert.equal(hits, { tcp: 0, udp: 0 }, `the host's loopback resolver was reached:\n${r.stdout}`);
  assert.not.match(r.stdout, Secret);
  // Nothing in the namespace can reach that resolver: resolv.conf names public ones, as Docker does.
  assert.match(r.stdout, /^nameserver 8\.8\.8\.8$/m);
  const warned = new RegExp(`WARNING: nameserver ${ip.replace(/\./g, '\\.')} .*loopback.*8\\.8\\.8\\.8`);
  assert.match(r.stderr, warned);
  // A build's RUN steps, the same; the warning comes once the build's network starts.
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN ${sh} > /out.txt\n` });
  const out = tempDir('net-out');
  dirs.push(ctx, out);
  const args = ['build', '--no-cache', '-o', `type=local,dest=${out}`, ctx];
  const built = await cliWithResolvConf(`nameserver ${ip}\n`, args);
  assert.is(built.code, 0, built.stderr);
  const text = readFileSync(join(out, 'out.txt'), 'utf8');
  assert.equal(hits, { tcp: 0, udp: 0 }, `the host's loopback resolver was reached from a RUN step:\n${text}`);
  assert.match(text, /^nameserver 8\.8\.8\.8$/m);
  assert.match(built.stderr, warned);
});

// slirp4netns costs a process and its start: a build starts it for the first RUN step that runs in
// the default network, never for a build without one, nor for RUN steps served from the cache.
test('a build starts slirp4netns only for a RUN step that runs (not without RUN, not when cached)', async () => {
  const real = spawnSync('sh', ['-c', 'command -v slirp4netns'], { encoding: 'utf8' }).stdout.trim();
  if (!real) return skip('slirp4netns not installed');
  const dir = tempDir('slirp-count');
  dirs.push(dir);
  // The launcher runs the helper with an empty environment: the wrapper names its log itself.
  const log = join(dir, 'started');
  const wrapper = join(dir, 'slirp4netns');
  writeFileSync(wrapper, `#!/bin/sh\necho started >> '${log}'\nexec '${real}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  const starts = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0);
  const build = (dockerfile: string) =>
    new Promise<Result>((resolve) => {
      const ctx = context({ Dockerfile: dockerfile, a: 'a\n' });
      dirs.push(ctx);
      const c = tsbuildAsync(['build', '-q', ctx], { root, env: { TSBUILD_SLIRP4NETNS: wrapper } });
      let stdout = '';
      let stderr = '';
      c.stdout.setEncoding('utf8').on('data', (x: string) => {
        stdout += x;
      });
      c.stderr.setEncoding('utf8').on('data', (x: string) => {
        stderr += x;
      });
      c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  const tag = randomBytes(4).toString('hex');
  ok(await build(`FROM ${Base}\nCOPY a /a-${tag}\nRUN --network=none echo ${tag} > /n\n`));
  assert.is(starts(), 0, 'started for a build without a default-network RUN step');
  const withRun = `FROM ${Base}\nRUN echo ${tag} > /x\n`;
  ok(await build(withRun));
  assert.is(starts(), 1, 'the RUN step did not get a network through the wrapper');
  ok(await build(withRun));
  assert.is(starts(), 1, 'started again for a cached RUN step');
});

test('--network none still has lo only and keeps working', async () => {
  const r = await cli(['run', '--rm', '--network', 'none', Base, 'ls', '/sys/class/net']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'lo\n');
});

// The host network is an entitlement of the build, as in buildx.
const refusals: { name: string; dockerfile: string; args: string[]; stderr: RegExp }[] = [
  {
    name: 'RUN --network=host without --allow',
    args: [],
    dockerfile: `FROM ${Base}\nRUN true\nRUN --network=host echo hi\n`,
    stderr: /Dockerfile:3:1: RUN --network=host needs the network.host entitlement: build with --allow network.host/,
  },
  {
    name: '--network host without --allow',
    dockerfile: `FROM ${Base}\nRUN echo hi\n`,
    args: ['--network', 'host'],
    stderr: /--network host: the host network must be allowed explicitly with --allow network.host/,
  },
  {
    name: 'an unknown entitlement',
    dockerfile: `FROM ${Base}\nRUN echo hi\n`,
    args: ['--allow', 'network.hots'],
    stderr: /--allow: unknown entitlement "network.hots"/,
  },
];
for (const row of refusals) {
  test(`refused: ${row.name} (exit 2, says which flag)`, async () => {
    const ctx = context({ Dockerfile: row.dockerfile });
    dirs.push(ctx);
    const r = await cli(['build', ...row.args, ctx]);
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, row.stderr);
    assert.not.match(r.stderr, /\n\s+at /, 'a stack trace');
  });
}

test("RUN --network=host with --allow network.host is in the host's network namespace", async () => {
  const dockerfile =
    `FROM ${Base}\nRUN --network=host readlink /proc/self/ns/net > /netns\n` +
    'RUN readlink /proc/self/ns/net > /default\n';
  const ctx = context({ Dockerfile: dockerfile });
  const out = tempDir('net-out');
  dirs.push(ctx, out);
  ok(await cli(['build', '--allow', 'network.host', '-o', `type=local,dest=${out}`, ctx]));
  const host = readlinkSync('/proc/self/ns/net');
  assert.is(readFileSync(join(out, 'netns'), 'utf8').trim(), host);
  assert.is.not(readFileSync(join(out, 'default'), 'utf8').trim(), host);
});

/** Host processes whose parent is `pid`, with their argv[0]. */
function childrenOf(pid: number): { pid: number; argv0: string }[] {
  const out: { pid: number; argv0: string }[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const ppid = Number(
        readFileSync(`/proc/${p}/stat`, 'utf8')
          .replace(/^.*\) /, '')
          .split(' ')[1],
      );
      if (ppid === pid) out.push({ pid: Number(p), argv0: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] });
    } catch {
      /* gone */
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

for (const sig of ['SIGINT', 'SIGKILL'] as const) {
  test(`${sig} of tsbuild during a RUN ends the build's network (holder and slirp4netns)`, async () => {
    // The output says "in-run"; the command line the progress also shows does not.
    const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo "in-""run" && sleep 300\n` });
    dirs.push(ctx);
    const child = tsbuildAsync(['build', '--progress=plain', '--no-cache', ctx], { root });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      err += s;
    });
    const closed = new Promise((r) => child.on('close', r));
    for (const end = Date.now() + 30000; !err.includes('in-run') && Date.now() < end;) await sleep(50);
    assert.ok(err.includes('in-run'), err);
    const holder = childrenOf(child.pid!).find((c) => c.argv0 === 'tsbuild-netns');
    assert.ok(holder, 'no network holder under tsbuild');
    const helpers = childrenOf(holder.pid);
    assert.equal(
      helpers.map((h) => h.argv0.split('/').pop()),
      ['slirp4netns'],
    );
    child.kill(sig);
    await closed;
    const left = () => [holder.pid, helpers[0].pid].filter(alive);
    for (const end = Date.now() + 10000; left().length && Date.now() < end;) await sleep(20);
    assert.equal(left(), [], 'left running after tsbuild ended');
  });
}

/** GETs / from addr:port until the body arrives (the server in the container may not listen yet). */
async function fetchBody(host: string, p: number, deadlineMs = 20000): Promise<string> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const body = await new Promise<string>((resolve) => {
      const s = connect(p, host);
      let data = '';
      s.setEncoding('utf8').on('data', (d: string) => {
        data += d;
      });
      s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
      s.on('error', () => resolve(''));
      s.on('close', () => resolve(data));
    });
    if (body.includes('\r\n\r\n') || Date.now() > until) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function freePort(): Promise<number> {
  const s = await listen(createServer(), 0, '0.0.0.0');
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

test('-p publishes a container port on the host (IP:HOST:CTR and HOST:CTR)', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const name = `web-${randomBytes(3).toString('hex')}`;
  const web = 'mkdir -p /www && echo PUBLISHED > /www/index.html && exec httpd -f -p 8080 -h /www';
  const publish = ['-p', `127.0.0.1:${p1}:8080`, '-p', `${p2}:8080/tcp`];
  const r = await cli(['run', '-d', '--name', name, ...publish, Base, 'sh', '-c', web]);
  assert.is(r.code, 0, r.stderr);
  try {
    const b1 = await fetchBody('127.0.0.1', p1);
    assert.match(b1, /200 OK[\s\S]*PUBLISHED/, b1);
    const b2 = outbound && (await fetchBody(outbound.ip, p2));
    if (b2 !== undefined) assert.match(b2, /200 OK[\s\S]*PUBLISHED/, b2);
  } finally {
    await cli(['rm', '-f', name]);
  }
});

test('-p HOST:CTR/udp forwards datagrams into the container', async () => {
  if (!probeBuilt) return skip('no C compiler (cc) for the network probe');
  const hp = await freePort();
  const args = ['run', '--rm', '-p', `127.0.0.1:${hp}:5000/udp`, Image, '/probe', 'udprecv', '5000'];
  const c = tsbuildAsync(args, { root });
  let out = '';
  c.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const done = new Promise<number | null>((r) => c.on('close', r));
  let ended = false;
  void done.then(() => {
    ended = true;
  });
  const udp = createSocket('udp4');
  try {
    // Until the receiver has one (it may not be bound yet when the first datagrams arrive).
    for (const end = Date.now() + 20000; !ended && Date.now() < end; await new Promise((r) => setTimeout(r, 100)))
      if (out.includes('listening')) udp.send('udp-hello', hp, '127.0.0.1');
  } finally {
    udp.close();
    if (!ended) c.kill('SIGKILL');
  }
  assert.is(await done, 0, out);
  assert.match(out, /^ok udp-hello$/m);
});

test('-p: bad mappings and networks that cannot publish are usage errors', async () => {
  for (const [args, re] of [
    [['-p', '80'], /-p 80: not a port mapping/],
    [['-p', '0:80'], /port 0 is not in 1-65535/],
    [['-p', '[::1]:80:80'], /only IPv4 host addresses/],
    [['--network', 'none', '-p', '8080:80'], /ports can only be published from the default network/],
  ] as [string[], RegExp][]) {
    const r = await cli(['run', '--rm', ...args, Base, 'true']);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test.run();
