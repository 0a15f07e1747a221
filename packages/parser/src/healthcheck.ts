// HEALTHCHECK is the one instruction with its own sub-grammar (NONE | CMD, durations, retries):
// its checks live apart so convertStep stays a table of the simple instructions.
import type { Instruction } from './ast.js';
import { parseDuration } from './duration.js';
import type { At } from './errors.js';
import type { parseFlags } from './flags.js';
import type { Step } from './types.js';

export function healthcheck(
  node: Instruction,
  base: Omit<Extract<Step, { kind: 'user' }>, 'kind' | 'user'>,
  flags: ReturnType<typeof parseFlags>,
  fail: (code: string, message: string, at?: At) => never,
  arg: (index: number) => At,
  flagValue: (name: string) => At,
): Step {
  if (node.args.length === 0) fail('arguments', 'HEALTHCHECK requires at least one argument');
  const type = node.args[0].toUpperCase();
  const args = node.args.slice(1);
  if (type === 'NONE') {
    if (args.length !== 0) fail('arguments', 'HEALTHCHECK NONE takes no arguments', arg(1));
    return { ...base, kind: 'healthcheck', test: ['NONE'] };
  }
  if (type !== 'CMD') fail('arguments', `Unknown type "${node.args[0]}" in HEALTHCHECK (try CMD)`, arg(0));
  if (args.length === 0) fail('arguments', 'Missing command after HEALTHCHECK CMD', arg(0));
  const test = node.json ? ['CMD', ...args] : ['CMD-SHELL', args.join(' ')];
  const step: Step = { ...base, kind: 'healthcheck', test };
  const durations = [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start-period', 'startPeriod'],
    ['start-interval', 'startInterval'],
  ] as const;
  for (const [flag, field] of durations) {
    const v = flags.string(flag);
    if (v === undefined || v === '') continue;
    const d = parseDuration(v);
    if (d === undefined) fail('bad-flag', `time: invalid duration "${v}" for --${flag}`, flagValue(flag));
    if (d === 0) continue;
    if (d < 1e6) fail('bad-flag', `Interval "${flag}" cannot be less than 1ms`, flagValue(flag));
    step[field] = d!;
  }
  const retries = flags.string('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries))
      fail('bad-flag', `invalid --retries value "${retries}": not a number`, flagValue('retries'));
    const n = Number(retries);
    if (n < 0) fail('bad-flag', `--retries cannot be negative (${n})`, flagValue('retries'));
    step.retries = n;
  }
  return step;
}
