// Argument parsing (src/cli/args.ts), without root: docker's flag shapes, and every bad flag a usage
// error (exit 2) whose message names the flag. Rows run against a small spec and against the real
// specs of build and run (src/cli/flags.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bool, buildArgs, list, parseArgs, str, type FlagSpec, type Parsed } from '../src/cli/args.js';
import { flagsOf } from '../src/cli/flags.js';
import { UsageError } from '../src/errors.js';
import { codeOf } from '@tsbuild/errdefs';

const specs: FlagSpec[] = [
  { name: 'tag', short: 't', kind: 'list', help: 't' },
  { name: 'file', short: 'f', kind: 'string', help: 'f' },
  { name: 'quiet', short: 'q', kind: 'bool', help: 'q' },
  { name: 'all', short: 'a', kind: 'bool', help: 'a' },
  { name: 'network', kind: 'string', aliases: ['net'], help: 'n' },
];

const flags = (p: Parsed) => Object.fromEntries(p.flags);

const ok: [string, string[], Record<string, unknown>, string[], { stopAtFirstPositional?: boolean }?][] = [
  ['nothing', [], {}, []],
  ['--long value', ['--file', 'D', '.'], { file: 'D' }, ['.']],
  ['--long=value', ['--file=D', '.'], { file: 'D' }, ['.']],
  ['--long= (empty value)', ['--file=', '.'], { file: '' }, ['.']],
  ['a value may start with a dash', ['--file', '-', '.'], { file: '-' }, ['.']],
  ['a value may hold =', ['--file=a=b'], { file: 'a=b' }, []],
  ['-s value', ['-f', 'D'], { file: 'D' }, []],
  ['-svalue attached', ['-fD'], { file: 'D' }, []],
  ['-s=value', ['-f=D'], { file: 'D' }, []],
  ['-file is -f ile, as docker reads it', ['-file'], { file: 'ile' }, []],
  ['the last string wins', ['-f', 'a', '--file', 'b'], { file: 'b' }, []],
  ['a list repeats, in order', ['-t', 'a:1', '--tag=b:2', '-tc:3'], { tag: ['a:1', 'b:2', 'c:3'] }, []],
  ['bools bundle', ['-qa'], { quiet: true, all: true }, []],
  ['a bundle may end in a value', ['-qtapp:1'], { quiet: true, tag: ['app:1'] }, []],
  ['a bundle may end in a flag taking the next word', ['-qf', 'D'], { quiet: true, file: 'D' }, []],
  ['--bool=false', ['--quiet=false'], { quiet: false }, []],
  ['--bool=1', ['--quiet=1'], { quiet: true }, []],
  ['-b=false (docker: commit -p=false)', ['-q=false', 'x'], { quiet: false }, ['x']],
  ['bundled, then -b=true', ['-aq=true'], { quiet: true, all: true }, []],
  // Go's strconv.ParseBool, which docker's flags use: docker commit -p=False, --quiet=T.
  ['-b=False', ['-q=False'], { quiet: false }, []],
  ['--bool=T', ['--quiet=T'], { quiet: true }, []],
  ['--bool=f', ['--quiet=f'], { quiet: false }, []],
  ['--bool=TRUE', ['--quiet=TRUE'], { quiet: true }, []],
  ['an alias sets the flag under its name', ['--net', 'host'], { network: 'host' }, []],
  ['-- ends the flags', ['-q', '--', '-f', '--x'], { quiet: true }, ['-f', '--x']],
  ['a lone - is a positional', ['-'], {}, ['-']],
  ['flags after positionals', ['.', '-q'], { quiet: true }, ['.']],
  [
    'stopAtFirstPositional: the rest is the command',
    ['-q', 'img', 'sh', '-c', '--file'],
    { quiet: true },
    ['img', 'sh', '-c', '--file'],
    { stopAtFirstPositional: true },
  ],
];
for (const [name, argv, want, positionals, opts] of ok)
  test(`parses: ${name}`, () => {
    const p = parseArgs(argv, specs, opts);
    assert.equal(flags(p), want);
    assert.equal(p.positionals, positionals);
  });

// Every error is a UsageError (errdefs: invalid, exit 2) with this exact message.
const bad: [string, string[], string][] = [
  ['an unknown long flag', ['--frobnicate'], 'unknown flag: --frobnicate'],
  ['an unknown long flag with a value', ['--frobnicate=1'], 'unknown flag: --frobnicate'],
  ['an unknown shorthand', ['-x'], "unknown shorthand flag: 'x' in -x"],
  ['an unknown shorthand in a bundle', ['-qx'], "unknown shorthand flag: 'x' in -qx"],
  ['a missing value', ['--file'], 'flag needs an argument: --file'],
  ['a missing value, short', ['-f'], "flag needs an argument: 'f' in -f"],
  ['a bool given a word', ['--quiet=yes'], 'flag --quiet takes true or false, not "yes"'],
  ['a short bool given a word', ['-q=no'], 'flag -q takes true or false, not "no"'],
  ['a bool given an object key', ['--quiet=toString'], 'flag --quiet takes true or false, not "toString"'],
];
for (const [name, argv, message] of bad)
  test(`rejects: ${name}`, () => {
    try {
      parseArgs(argv, specs);
    } catch (e) {
      assert.ok(e instanceof UsageError, String(e));
      assert.is((e as Error).message, message);
      assert.is(codeOf(e), 'invalid');
      return;
    }
    assert.unreachable(`${argv.join(' ')} was accepted`);
  });

test('str, bool and list read by type and default to nothing', () => {
  const p = parseArgs(['-t', 'a', '-q', '-f', 'F'], specs);
  assert.is(str(p, 'file'), 'F');
  assert.is(str(p, 'tag'), undefined);
  assert.is(bool(p, 'quiet'), true);
  assert.is(bool(p, 'all'), false);
  assert.equal(list(p, 'tag'), ['a']);
  assert.equal(list(p, 'file'), []);
});

const buildArgCases: [string, string[], Record<string, string>][] = [
  ['K=V', ['A=1', 'B=x=y'], { A: '1', B: 'x=y' }],
  ['K= is empty', ['A='], { A: '' }],
  ['K alone from the environment', ['TSBUILD_ARGS_TEST_SET'], { TSBUILD_ARGS_TEST_SET: 'from-env' }],
  ['K alone and unset is left out', ['TSBUILD_ARGS_TEST_UNSET'], {}],
  ['the last of a name wins', ['A=1', 'A=2'], { A: '2' }],
];
for (const [name, values, want] of buildArgCases)
  test(`buildArgs: ${name}`, () => {
    process.env.TSBUILD_ARGS_TEST_SET = 'from-env';
    delete process.env.TSBUILD_ARGS_TEST_UNSET;
    assert.equal(buildArgs(values), want);
  });

test('buildArgs: a missing name is a usage error naming the value', () => {
  assert.throws(
    () => buildArgs(['=v']),
    (e: unknown) => e instanceof UsageError && e.message === '--build-arg "=v": missing name',
  );
});

// The real specs: docker build and docker run command lines.
test('build: a docker build command line', () => {
  const p = parseArgs(
    [
      '-t',
      'app:1',
      '-tapp:latest',
      '-f',
      'Dockerfile.dev',
      '--build-arg',
      'V=1',
      '--no-cache',
      '--progress=plain',
      '.',
    ],
    flagsOf('build'),
  );
  assert.equal(list(p, 'tag'), ['app:1', 'app:latest']);
  assert.is(str(p, 'file'), 'Dockerfile.dev');
  assert.equal(list(p, 'build-arg'), ['V=1']);
  assert.is(bool(p, 'no-cache'), true);
  assert.is(str(p, 'progress'), 'plain');
  assert.equal(p.positionals, ['.']);
});

test('run: flags stop at the image; the command keeps its own flags', () => {
  const p = parseArgs(
    ['--rm', '-it', '-e', 'A=1', '-v', '/h:/c:ro', '--net=none', 'img:1', 'sh', '-c', 'echo -e hi'],
    flagsOf('run'),
    { stopAtFirstPositional: true },
  );
  assert.is(bool(p, 'rm'), true);
  assert.is(bool(p, 'interactive'), true);
  assert.is(bool(p, 'tty'), true);
  assert.equal(list(p, 'env'), ['A=1']);
  assert.equal(list(p, 'volume'), ['/h:/c:ro']);
  assert.is(str(p, 'network'), 'none');
  assert.equal(p.positionals, ['img:1', 'sh', '-c', 'echo -e hi']);
});

test('no two flags of a command share a name, alias or shorthand', () => {
  for (const name of ['build', 'run', 'exec', 'ps', 'images', 'pull', 'push', 'login', 'parse', 'prune']) {
    const seen = new Set<string>();
    for (const f of flagsOf(name))
      for (const n of [`--${f.name}`, ...(f.aliases ?? []).map((a) => `--${a}`), ...(f.short ? [`-${f.short}`] : [])]) {
        assert.not.ok(seen.has(n), `${name}: ${n} twice`);
        seen.add(n);
      }
  }
});

test.run();
