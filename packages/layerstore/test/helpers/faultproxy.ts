// A fault-injecting HTTP proxy on 127.0.0.1 between a client and a registry. Faults follow a
// deterministic schedule: each rule fires on the nth request that matches it, once.
// It counts request-body bytes forwarded (uploads) and response bytes relayed (downloads).
import http from 'node:http';
import type net from 'node:net';

export type Fault =
  /** Answer with this status (and Retry-After) without forwarding. */
  | { kind: 'status'; status: number; retryAfter?: number }
  /** Drop the connection before forwarding anything. */
  | { kind: 'reset-early' }
  /** Forward the request but cut the connection after `afterBytes` of its body went upstream. */
  | { kind: 'reset-upload'; afterBytes: number }
  /** Relay the response headers and `afterBytes` of the body, then cut the connection. */
  | { kind: 'reset-download'; afterBytes: number };

export interface FaultRule {
  method?: string;
  /** Tested against the path (without query). */
  path?: RegExp;
  /** Fire on the nth matching request (1-based). Default 1. */
  nth?: number;
  fault: Fault;
}

export interface FaultProxy {
  host: string;
  port: number;
  /** Request body bytes forwarded upstream. */
  bytesUp: number;
  /** Response body bytes relayed to clients. */
  bytesDown: number;
  /** Faults that fired, in order, as "METHOD path kind". */
  fired: string[];
  requests: Array<{ method: string; path: string; status?: number }>;
  setRules(rules: FaultRule[]): void;
  resetCounters(): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(upstreamPort: number, rules: FaultRule[] = []): Promise<FaultProxy> {
  let schedule = rules.map((r) => ({ ...r, seen: 0, done: false }));
  const sockets = new Set<net.Socket>();
  const state: FaultProxy = {
    host: '',
    port: 0,
    bytesUp: 0,
    bytesDown: 0,
    fired: [],
    requests: [],
    setRules(r) {
      schedule = r.map((x) => ({ ...x, seen: 0, done: false }));
    },
    resetCounters() {
      state.bytesUp = 0;
      state.bytesDown = 0;
      state.fired = [];
      state.requests = [];
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const pick = (method: string, path: string): Fault | undefined => {
    let chosen: Fault | undefined;
    for (const r of schedule) {
      if (r.done || (r.method && r.method !== method) || (r.path && !r.path.test(path))) continue;
      r.seen++;
      if (!chosen && r.seen === (r.nth ?? 1)) {
        r.done = true;
        chosen = r.fault;
      }
    }
    return chosen;
  };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const entry: { method: string; path: string; status?: number } = { method: req.method!, path };
    state.requests.push(entry);
    const fault = pick(req.method!, path);
    if (fault)
      state.fired.push(`${req.method} ${path} ${fault.kind}${fault.kind === 'status' ? ` ${fault.status}` : ''}`);
    if (fault?.kind === 'status') {
      req.resume();
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      res.writeHead(fault.status, headers);
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
      entry.status = fault.status;
      return;
    }
    if (fault?.kind === 'reset-early') {
      req.socket.destroy();
      return;
    }
    const up = http.request(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent: false },
      (upRes) => {
        entry.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let relayed = 0;
        upRes.on('data', (chunk: Buffer) => {
          if (fault?.kind === 'reset-download' && relayed + chunk.length > fault.afterBytes) {
            const part = chunk.subarray(0, Math.max(0, fault.afterBytes - relayed));
            state.bytesDown += part.length;
            res.write(part, () => {
              req.socket.destroy();
              upRes.destroy();
            });
            upRes.pause();
            relayed = Infinity;
            return;
          }
          if (relayed === Infinity) return;
          relayed += chunk.length;
          state.bytesDown += chunk.length;
          res.write(chunk);
        });
        upRes.on('end', () => {
          if (relayed !== Infinity) res.end();
        });
        upRes.on('error', () => req.socket.destroy());
      },
    );
    up.on('error', () => req.socket.destroy());
    let sent = 0;
    req.on('data', (chunk: Buffer) => {
      if (fault?.kind === 'reset-upload' && sent + chunk.length > fault.afterBytes) {
        const part = chunk.subarray(0, Math.max(0, fault.afterBytes - sent));
        state.bytesUp += part.length;
        sent = Infinity;
        up.write(part, () => {
          up.destroy();
          req.socket.destroy();
        });
        return;
      }
      if (sent === Infinity) return;
      sent += chunk.length;
      state.bytesUp += chunk.length;
      if (!up.write(chunk)) {
        req.pause();
        up.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      if (sent !== Infinity) up.end();
    });
    req.on('error', () => up.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = (server.address() as net.AddressInfo).port;
  state.host = `127.0.0.1:${state.port}`;
  return state;
}
