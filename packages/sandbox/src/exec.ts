// exec(): one more command inside a running sandbox. The launcher (exec mode) joins the cgroups and
// the namespaces (cgroup, ipc, uts, net, pid, mnt) of the sandbox's PID 1 and forks the command
// there, with the same capability set and seccomp filter as run(). Never from Node itself: setns
// into a mount namespace is refused to a multithreaded process.
import { readFileSync, existsSync } from 'node:fs';
import type { ExecSpec, Exit } from './types.js';
import { encodeExecSpec, launcherProcess } from './spec.js';
import { launch, signalNames } from './run.js';
import { SandboxError, abortError } from './errors.js';
import { cgroupDriver } from './cgroup/index.js';

/**
 * The cgroup.procs files of the tsbuild cgroups `pid` is in (read from /proc/PID/cgroup), so that
 * what exec starts is counted and limited with the rest of the sandbox.
 */
export function cgroupProcsOf(pid: number): string[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    throw new SandboxError(`no process ${pid}: the sandbox is not running`);
  }
  const unified = existsSync('/sys/fs/cgroup/cgroup.controllers');
  // Rootless with a delegated cgroup: the run cgroups are below it, <delegated>/tsbuild/ID.
  const delegated = cgroupDriver()?.delegation ? cgroupDriver() : null;
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^\d+:([^:]*):(\/.*)$/);
    if (!m) continue;
    const ctrls = m[1];
    let dir: string | undefined;
    if (delegated) {
      const d = `${delegated.mount}${m[2]}`;
      if (ctrls === '' && d.startsWith(`${delegated.root}/tsbuild/`)) dir = d;
    } else if (!m[2].startsWith('/tsbuild/')) continue;
    else if (ctrls === '') dir = unified ? `/sys/fs/cgroup${m[2]}` : `/sys/fs/cgroup/unified${m[2]}`;
    else {
      const names = ctrls.split(',').map((c) => c.replace(/^name=/, ''));
      for (const cand of [names.join(','), ...names]) {
        if (existsSync(`/sys/fs/cgroup/${cand}${m[2]}/cgroup.procs`)) {
          dir = `/sys/fs/cgroup/${cand}${m[2]}`;
          break;
        }
      }
    }
    if (dir && existsSync(`${dir}/cgroup.procs`) && !out.includes(`${dir}/cgroup.procs`))
      out.push(`${dir}/cgroup.procs`);
  }
  return out;
}

export async function exec(spec: ExecSpec): Promise<Exit> {
  if (spec.argv.length === 0) throw new SandboxError('argv is empty');
  if (!spec.cwd.startsWith('/')) throw new SandboxError(`cwd must be absolute: ${spec.cwd}`);
  if (spec.signal?.aborted) throw abortError(spec.signal);
  const started = performance.now();
  const { outcome, aborted } = await launch(
    spec,
    encodeExecSpec({
      ...launcherProcess(spec),
      pid: spec.pid,
      cgroupProcs: cgroupProcsOf(spec.pid),
      noNetRaw: !spec.keepNetRaw,
    }),
  );
  const usage = { wallMs: performance.now() - started };
  if (aborted) throw abortError(spec.signal!);
  switch (outcome.kind) {
    case 'exit':
      return { code: outcome.code, oomKilled: false, usage };
    case 'signal':
      return {
        code: 128 + outcome.signal,
        signal: signalNames.get(outcome.signal) ?? `SIG${outcome.signal}`,
        oomKilled: false,
        usage,
      };
    case 'error':
      return { code: outcome.code, oomKilled: false, startError: outcome.message, usage };
    case 'setup':
      throw new SandboxError(outcome.message);
  }
  throw new SandboxError(`unknown launcher outcome ${JSON.stringify(outcome)}`);
}
