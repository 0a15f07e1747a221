// A Linux bridge of our own for a private dockerd (the test suite's and the benchmark's), so that the
// daemon never touches the machine's docker0: started with --bridge=none, dockerd deletes docker0 at
// start-up (and with the default it would take it over). The bridge gets a private /24 that no
// interface or route of the host uses, and is deleted again by remove().
import { pidAlive } from '@tsbuild/sys';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';

export interface Bridge {
  /** Interface name, <= 15 characters: `tsb` + the run tag + 4 random hex digits. */
  name: string;
  /** The bridge's own address with its prefix, e.g. 172.29.31.1/24 (dockerd takes the network from it). */
  address: string;
  /** Deletes the bridge; safe to call twice or after someone else deleted it. */
  remove(): void;
}

/**
 * The tag that starts this process's bridge names. scripts/run-tests.mjs sets TSBUILD_TEST_RUN for
 * every test process, and its host guard fails the run if a bridge named after its tag is left.
 */
export function bridgeTag(): string {
  return (process.env.TSBUILD_TEST_RUN ?? '').replace(/[^a-z0-9]/g, '').slice(0, 5);
}

function ip(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`ip ${args.join(' ')}: ${r.error.message} (iproute2 is needed for a private bridge)`);
  return { code: r.status ?? 1, out: r.stdout, err: r.stderr.trim() };
}

/** IPv4 prefixes in use here: interface addresses and routes (`default` is not a conflict). */
function prefixesInUse(): [number, number][] {
  const text = ip(['-4', '-o', 'addr', 'show']).out + '\n' + ip(['-4', 'route', 'show', 'table', 'all']).out;
  const out: [number, number][] = [];
  for (const m of text.matchAll(/(?:^|\s)(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/g)) {
    const bits = m[2] === undefined ? 32 : Number(m[2]);
    out.push([toInt(m[1]), bits]);
  }
  return out;
}

function toInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function overlaps(a: number, abits: number, b: number, bbits: number): boolean {
  const bits = Math.min(abits, bbits);
  if (bits === 0) return false; // 0.0.0.0/0 is the default route, not an address in use
  const mask = bits === 32 ? 0xffffffff : ~(0xffffffff >>> bits) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

/** Other interfaces holding an address in 172.29.<third>.0/24 (another process chose the same one). */
function taken(third: number, except: string): boolean {
  const lines = ip(['-4', '-o', 'addr', 'show']).out.split('\n');
  return lines.some((l) => l.includes(` inet 172.29.${third}.`) && l.split(/\s+/)[1] !== except);
}

const ALIAS = 'tsbuild-test owner=';

/** The owner alias names a pid only (no start time): a reused pid keeps its bridge a while longer. */
const alive = (pid: number) => pidAlive(pid);

/**
 * Deletes the bridges made here whose maker has died (a test process killed before it could stop its
 * daemon, whose dockerd its parent-death signal ended); returns their names so the caller can remove
 * what else was named after them.
 */
export function sweepBridges(): string[] {
  const gone: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/sys/class/net').filter((n) => n.startsWith('tsb'));
  } catch {
    return gone;
  }
  for (const name of names) {
    let alias = '';
    try {
      alias = readFileSync(`/sys/class/net/${name}/ifalias`, 'utf8').trim();
    } catch {
      continue;
    }
    if (!alias.startsWith(ALIAS)) continue;
    const owner = Number(alias.slice(ALIAS.length));
    if (!Number.isInteger(owner) || owner <= 0 || alive(owner)) continue;
    if (ip(['link', 'del', name]).code === 0) gone.push(name);
  }
  return gone;
}

/**
 * Creates and brings up a bridge with a /24 in 172.29.0.0/16 that nothing on the host uses. Two
 * processes choosing at once can pick the same /24; the loser notices (another interface has it)
 * and picks again.
 */
export function createBridge(tag = bridgeTag()): Bridge {
  const name = `tsb${tag}${randomBytes(2).toString('hex')}`;
  if (name.length > 15) throw new Error(`bridge name ${name} is longer than 15 characters`);
  const made = ip(['link', 'add', 'name', name, 'type', 'bridge']);
  if (made.code !== 0) throw new Error(`ip link add ${name} type bridge: ${made.err}`);
  const remove = () => {
    const r = ip(['link', 'del', name]);
    const gone = /Cannot find device|does not exist/.test(r.err);
    if (r.code !== 0 && !gone) throw new Error(`ip link del ${name}: ${r.err}`);
  };
  try {
    for (let attempt = 0; attempt < 64; attempt++) {
      const third = 1 + (randomBytes(1)[0] % 254);
      const net = toInt(`172.29.${third}.0`);
      if (prefixesInUse().some(([a, bits]) => overlaps(a, bits, net, 24))) continue;
      const address = `172.29.${third}.1/24`;
      const added = ip(['addr', 'add', address, 'dev', name]);
      if (added.code !== 0) throw new Error(`ip addr add ${address} dev ${name}: ${added.err}`);
      if (taken(third, name)) {
        ip(['addr', 'del', address, 'dev', name]);
        continue;
      }
      // Who made it: a bridge whose maker died without remove() is found and deleted by sweepBridges().
      ip(['link', 'set', name, 'alias', `${ALIAS}${process.pid}`]);
      const up = ip(['link', 'set', name, 'up']);
      if (up.code !== 0) throw new Error(`ip link set ${name} up: ${up.err}`);
      return { name, address, remove };
    }
    throw new Error('no free /24 in 172.29.0.0/16 for a private bridge');
  } catch (e) {
    remove();
    throw e;
  }
}
