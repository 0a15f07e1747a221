// What every remote suite starts with: a real docker-registry on 127.0.0.1, a fault proxy in
// front of it, and temp blob stores and dirs, all removed when the suite ends.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'uvu';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { startFaultProxy, type FaultProxy } from './faultproxy.js';
import { newBlobStore } from './registry-image.js';

export interface RegistryEnv {
  /** Set once the suite's `before` hook has run. */
  reg: TestRegistry;
  proxy: FaultProxy;
  store(): ReturnType<typeof newBlobStore>;
  tmp(prefix: string): string;
}

export function withRegistry(test: Test): RegistryEnv {
  const cleanups: Array<() => void> = [];
  const env = {
    store() {
      const s = newBlobStore();
      cleanups.push(() => rmSync(s.root, { recursive: true, force: true }));
      return s;
    },
    tmp(prefix: string) {
      const d = mkdtempSync(path.join(os.tmpdir(), prefix));
      cleanups.push(() => rmSync(d, { recursive: true, force: true }));
      return d;
    },
  } as RegistryEnv;
  test.before(async () => {
    env.reg = await startRegistry();
    env.proxy = await startFaultProxy(env.reg.port);
  });
  test.after(async () => {
    await env.proxy?.stop();
    await env.reg?.stop();
    for (const c of cleanups) c();
  });
  return env;
}
