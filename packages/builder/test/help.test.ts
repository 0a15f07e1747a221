// Help is rendered from the flag specs: every command main dispatches has a spec, and its
// `--help` lists every flag the parser accepts (long name, short name, aliases) with its help line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { commands, flagsOf } from '../src/cli/flags.js';
import { commandHelp, usage } from '../src/cli/help.js';
import { commandNames } from '../src/cli/main.js';
import { parseArgs, type FlagSpec } from '../src/cli/args.js';
import { UsageError } from '../src/errors.js';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('every command main dispatches has a spec, and no spec is for a command main lacks', () => {
  assert.equal([...commandNames()].sort(), Object.keys(commands).sort());
});

const all: [string, string | undefined, FlagSpec[]][] = Object.entries(commands).flatMap(([name, c]) => [
  [name, undefined, c.flags] as [string, string | undefined, FlagSpec[]],
  ...Object.entries(c.subcommands ?? {}).map(([sub, s]) => [name, sub, s.flags] as [string, string, FlagSpec[]]),
]);

for (const [name, sub, flags] of all)
  test(`tsbuild ${name}${sub ? ` ${sub}` : ''} --help lists each of its ${flags.length} flags`, () => {
    const help = commandHelp(name)!;
    assert.ok(help.startsWith(`Usage: tsbuild ${name} `), help);
    for (const f of flags) {
      assert.ok(f.help.trim().length > 0, `--${f.name} has a help line`);
      const line = help.split('\n').findIndex((l) => new RegExp(`--${escape(f.name)}\\b`).test(l));
      assert.ok(line >= 0, `--${f.name} in the help of ${name}`);
      assert.ok(help.includes(f.help), `the help line of --${f.name}`);
      if (f.short) assert.match(help, new RegExp(`-${escape(f.short)}, --${escape(f.name)}\\b`));
      for (const a of f.aliases ?? []) assert.match(help, new RegExp(`--${escape(a)}\\b`));
      // An optional value is written on the flag (`--explain[=text|json]`), any other after a space.
      const sep = f.kind === 'optional' ? '' : ' ';
      if (f.kind !== 'bool') assert.match(help, new RegExp(`--${escape(f.name)}${sep}${escape(f.value ?? 'VALUE')}`));
    }
    // The parser accepts exactly these: a flag not in the spec is a usage error naming it.
    assert.throws(
      () => parseArgs(['--no-such-flag'], flagsOf(name, sub)),
      (e: unknown) => e instanceof UsageError && e.message === 'unknown flag: --no-such-flag',
    );
  });

test('the command list names every command with its summary', () => {
  const u = usage();
  for (const [name, c] of Object.entries(commands))
    assert.match(u, new RegExp(`^  ${name} +${escape(c.summary)}$`, 'm'));
});

test('an unknown command has no help of its own', () => {
  assert.is(commandHelp('frobnicate'), undefined);
  assert.is(commandHelp('toString'), undefined);
});

test.run();
