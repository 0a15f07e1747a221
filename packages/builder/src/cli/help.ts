// `tsbuild --help` and `tsbuild COMMAND --help`, rendered from the flag specs in flags.ts: every flag a
// command accepts is listed, with its help line.
import type { FlagSpec } from './args.js';
import { commands, type CommandSpec } from './flags.js';

const COLUMN = 34;

function flagLine(f: FlagSpec): string {
  const value = f.kind === 'bool' ? '' : f.kind === 'optional' ? (f.value ?? '[=VALUE]') : ` ${f.value ?? 'VALUE'}`;
  const names = `${f.short ? `-${f.short}, ` : '    '}--${f.name}${value}`;
  const more = f.kind === 'list' && !/repeatable/.test(f.help) ? ' (repeatable)' : '';
  const aliases = f.aliases?.length ? ` (also --${f.aliases.join(', --')})` : '';
  const left = `  ${names}`;
  // A long flag gets its help on the next line, aligned, instead of a ragged column.
  const gap = left.length < COLUMN ? ' '.repeat(COLUMN - left.length) : `\n${' '.repeat(COLUMN)}`;
  return `${left}${gap}${f.help}${more}${aliases}`;
}

function flagBlock(flags: FlagSpec[]): string {
  return flags.length ? `\nOptions:\n${flags.map(flagLine).join('\n')}\n` : '';
}

function render(
  name: string,
  c: Pick<CommandSpec, 'usage' | 'about' | 'flags' | 'unsupported' | 'subcommands'>,
): string {
  let out = `Usage: tsbuild ${name} ${c.usage}\n`;
  if (c.about) out += `\n${c.about}\n`;
  out += flagBlock(c.flags);
  const implemented = new Set(c.flags.map((f) => f.name));
  const refused = (c.unsupported ?? []).filter((f) => !implemented.has(f.name));
  if (refused.length)
    out +=
      `\nNot supported (docker accepts them; tsbuild exits 2 naming the flag):\n` +
      refused.map((f) => flagLine({ ...f, kind: 'bool' })).join('\n') +
      '\n';
  for (const [sub, s] of Object.entries(c.subcommands ?? {})) {
    out += `\ntsbuild ${name} ${sub} ${s.usage}\n`;
    if (s.about) out += `${s.about}\n`;
    out += s.flags.map(flagLine).join('\n') + (s.flags.length ? '\n' : '');
  }
  return out;
}

/** The command list. */
export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length)) + 2;
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}${c.summary}`);
  return (
    'Usage: tsbuild [OPTIONS] PATH          build an image (same as tsbuild build)\n' +
    '       tsbuild COMMAND [OPTIONS]\n\n' +
    `Commands:\n${lines.join('\n')}\n\n` +
    "Run 'tsbuild COMMAND --help' for more information on a command.\n"
  );
}

export function commandHelp(command: string): string | undefined {
  const c = Object.hasOwn(commands, command) ? commands[command] : undefined;
  return c ? render(command, c) : undefined;
}
