import type { Instruction } from './ast.js';
import { DockerfileError, ExpansionError } from './errors.js';
import type { At, Pointer } from './errors.js';
import { proxyEnv } from './build-args.js';
import { parseFlags } from './flags.js';
import { chompHeredoc, parseHeredoc } from './heredoc.js';
import { healthcheck } from './healthcheck.js';
import { MountError, parseMount } from './mounts.js';
import { resolve, resolveKeepSlash } from './posix.js';
import { portProblem } from './ports.js';
import type { Scope } from './scope.js';
import { expandWord, expandWords } from './shell/lexer.js';
import { triggerText } from './triggers.js';
import type { FromSource, Location, RunMount, Step } from './types.js';

/** BuildKit runs a shebang heredoc (`RUN <<EOF` + `#!...`) as a file here; the builder mounts it. */
export const HEREDOC_DIR = '/dev/pipes/';

export interface StepContext {
  escape: string;
  /** Global ARGs and built-ins: what `ARG NAME` without a value inherits. */
  meta: ReadonlyMap<string, string>;
  buildArgs: Readonly<Record<string, string>>;
  /** `COPY --from` / `--mount from=` to a stage or an image. */
  resolveFrom(name: string, location: Location, pointer: Pointer | undefined): FromSource;
  onbuild: boolean;
  location: Location;
}

export function convertStep(node: Instruction, scope: Scope, ctx: StepContext): Step {
  const location = ctx.location;
  // Trigger steps carry their FROM's location: nothing inside it to point at.
  const ptr = (at: At): Pointer | undefined => (ctx.onbuild ? undefined : { cmd: node.cmd, at });
  const fail = (code: string, message: string, at: At = { kind: 'keyword' }): never => {
    throw new DockerfileError(code, message, location, ptr(at));
  };
  const text = (...texts: string[]): At => ({ kind: 'text', texts });
  const arg = (index: number): At => ({ kind: 'arg', index, text: node.args[index] ?? '' });
  const flagValue = (name: string, nth = 0, option?: string): At => ({
    kind: 'flag',
    name,
    nth,
    value: true,
    ...(option ? { option } : {}),
  });
  const x = (word: string): string => {
    try {
      return expandWord(word, scope.lookup, { escape: ctx.escape });
    } catch (e) {
      if (e instanceof ExpansionError) fail('expansion', `${node.keyword}: ${e.message}`, text(word));
      throw e;
    }
  };
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags({ ...node, location });
  } catch (e) {
    if (ctx.onbuild && e instanceof DockerfileError) throw new DockerfileError(e.code, e.message, e.location);
    throw e;
  }
  const base = {
    source: node.original + node.heredocs.map((h) => '\n' + h.content + h.name).join(''),
    location,
    env: scope.envList(),
    args: [...scope.args].map(([k, v]) => `${k}=${v}`),
    ...(ctx.onbuild ? { onbuild: true } : {}),
  };
  const exactlyOne = () => {
    if (node.args.length !== 1)
      fail(
        'arguments',
        `${node.keyword} requires exactly one argument`,
        node.args.length > 1 ? { kind: 'args' } : { kind: 'keyword' },
      );
    return node.args[0];
  };
  const shellForm = (args: string[]) => (node.json ? args : [...scope.shell, args.join(' ')]);

  switch (node.keyword) {
    case 'RUN': {
      let argv = node.args;
      const files: { path: string; content: string; mode: number }[] = [];
      if (node.heredocs.length > 0 && !node.json) {
        const only = parseHeredoc(argv[0] ?? '');
        if (only) {
          // The whole command is one heredoc: run its body, as a file when it has a shebang.
          const first = node.heredocs[0];
          const data = first.chomp ? chompHeredoc(first.content) : first.content;
          if (data.startsWith('#!')) {
            const path = resolve(HEREDOC_DIR, first.name);
            files.push({ path, content: data, mode: 0o755 });
            argv = [path];
          } else {
            argv = [data];
          }
        } else {
          // Anything else: hand the shell the command with the heredoc bodies re-attached.
          argv = [(argv[0] ?? '') + node.heredocs.map((h) => '\n' + h.content + h.name).join('')];
        }
      }
      const mounts: RunMount[] = [];
      let ssh = 0;
      flags.strings('mount').forEach((value, nth) => {
        try {
          const m = parseMount(value, x, scope.workdir, ssh, scope.workdirKnown);
          if (m.type === 'ssh') ssh++;
          const { fromName, ...mount } = m;
          if (fromName !== undefined && (mount.type === 'bind' || mount.type === 'cache')) {
            mount.from = ctx.resolveFrom(fromName, location, ptr(flagValue('mount', nth, 'from')));
          }
          mounts.push(mount);
        } catch (e) {
          if (e instanceof MountError)
            fail('bad-mount', `--mount=${value}: ${e.message}`, flagValue('mount', nth, e.key));
          throw e;
        }
      });
      const step: Step = { ...base, kind: 'run', argv: shellForm(argv), shellForm: !node.json, files, mounts };
      const proxy = proxyEnv(ctx.buildArgs);
      if (proxy.length > 0) step.proxy = proxy;
      if (scope.stageArgs.size > 0) {
        const env = new Map(scope.env);
        step.historyArgs = [...scope.stageArgs].map(([k, v]) => `${k}=${env.get(k) ?? v}`);
      }
      const network = flags.string('network');
      if (network !== undefined) {
        if (!['default', 'none', 'host'].includes(network))
          fail('bad-flag', `unsupported network mode "${network}" (use default, none or host)`, flagValue('network'));
        step.network = network as 'default';
      }
      const security = flags.string('security');
      if (security !== undefined) {
        if (!['sandbox', 'insecure'].includes(security))
          fail('bad-flag', `unsupported security mode "${security}" (use sandbox or insecure)`, flagValue('security'));
        step.security = security as 'sandbox';
      }
      return step;
    }
    case 'COPY':
    case 'ADD': {
      if (node.args.length < 2)
        fail(
          'arguments',
          `${node.keyword} requires at least two arguments, but only one was provided. Destination could not be ` +
            `determined`,
        );
      const srcs = node.args.slice(0, -1);
      const destRaw = node.args[node.args.length - 1];
      if (parseHeredoc(destRaw))
        fail('heredoc', `${node.keyword} cannot take a heredoc as a destination`, text(destRaw));
      const docs = new Map(node.heredocs.map((h) => [h.name, h]));
      const sources: string[] = [];
      const inline: { name: string; content: string }[] = [];
      for (const src of srcs) {
        const h = node.json ? undefined : parseHeredoc(src);
        if (h) {
          let content = docs.get(h.name)?.content ?? '';
          if (h.chomp) content = chompHeredoc(content);
          if (h.expand) {
            // Heredoc bodies expand variables but keep quotes (BuildKit's ExpandRaw).
            try {
              content = expandWord(content, scope.lookup, { escape: '\\', skipProcessQuotes: true });
            } catch (e) {
              if (e instanceof ExpansionError) fail('expansion', `${node.keyword}: ${e.message}`, text(src));
              throw e;
            }
          }
          inline.push({ name: h.name, content });
        } else {
          sources.push(x(src));
        }
      }
      const destWritten = x(destRaw);
      const step: Step = {
        ...base,
        kind: node.keyword === 'ADD' ? 'add' : 'copy',
        sources,
        inline,
        dest: resolveKeepSlash(scope.workdir, destWritten),
        destWritten,
        link: flags.bool('link') ?? false,
        exclude: flags.strings('exclude').map(x),
        parents: flags.bool('parents') ?? false,
        keepGitDir: flags.bool('keep-git-dir') ?? false,
      };
      const from = flags.string('from');
      if (from !== undefined) step.from = ctx.resolveFrom(from, location, ptr(flagValue('from')));
      const chown = flags.string('chown');
      if (chown !== undefined) step.chown = x(chown);
      const chmod = flags.string('chmod');
      if (chmod !== undefined) step.chmod = x(chmod);
      const checksum = flags.string('checksum');
      if (checksum !== undefined) step.checksum = x(checksum);
      const unpack = flags.bool('unpack');
      if (unpack !== undefined) step.unpack = unpack;
      return step;
    }
    case 'ENV':
    case 'LABEL': {
      if (node.args.length === 0) fail('arguments', `${node.keyword} requires at least one argument`);
      const pairs: [string, string][] = [];
      for (let i = 0; i + 2 < node.args.length + 1; i += 3) {
        const key = x(node.args[i]);
        if (key === '')
          fail('blank', `${node.keyword} names can not be blank`, text('=' + node.args[i + 1], node.args[i + 1]));
        pairs.push([key, x(node.args[i + 1])]);
        // All pairs are expanded before any is set: `ENV A=1 B=$A` gives B the old A, as in BuildKit.
      }
      if (node.keyword === 'ENV') {
        for (const [k, v] of pairs) scope.setEnv(k, v);
        return { ...base, kind: 'env', pairs };
      }
      return { ...base, kind: 'label', pairs };
    }
    case 'ARG': {
      if (node.args.length === 0) fail('arguments', 'ARG requires at least one argument');
      const declared: { name: string; value?: string }[] = [];
      for (const word of node.args) {
        const eq = word.indexOf('=');
        const name = eq < 0 ? word : word.slice(0, eq);
        if (name === '') fail('arguments', 'ARG names can not be blank', text(word));
        let value: string | undefined;
        if (Object.prototype.hasOwnProperty.call(ctx.buildArgs, name)) value = ctx.buildArgs[name];
        else if (eq >= 0) value = x(word.slice(eq + 1));
        else value = ctx.meta.get(name);
        scope.stageArgs.set(name, value ?? '');
        if (value !== undefined) {
          scope.args.set(name, value);
          scope.vars.set(name, value);
          declared.push({ name, value });
        } else {
          declared.push({ name });
        }
      }
      return { ...base, kind: 'arg', declared };
    }
    case 'CMD':
    case 'ENTRYPOINT': {
      const argv = shellForm(node.args);
      return {
        ...base,
        kind: node.keyword === 'CMD' ? 'cmd' : 'entrypoint',
        argv: node.args.length === 0 && !node.json ? [] : argv,
        shellForm: !node.json,
      };
    }
    case 'SHELL': {
      if (!node.json)
        fail('shell-not-json', 'SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/bash", "-c"]', {
          kind: 'args',
        });
      if (node.args.length === 0) fail('arguments', 'SHELL requires at least one argument', { kind: 'args' });
      scope.shell = [...node.args];
      return { ...base, kind: 'shell', argv: [...node.args] };
    }
    case 'WORKDIR': {
      const raw = x(exactlyOne());
      const path = resolve(scope.workdir, raw);
      scope.workdir = path;
      if (raw.startsWith('/')) scope.workdirKnown = true;
      return { ...base, kind: 'workdir', path };
    }
    case 'USER':
      return { ...base, kind: 'user', user: x(exactlyOne()) };
    case 'STOPSIGNAL':
      return { ...base, kind: 'stopsignal', signal: x(exactlyOne()) };
    case 'MAINTAINER':
      return { ...base, kind: 'maintainer', name: exactlyOne() };
    case 'EXPOSE': {
      if (node.args.length === 0) fail('arguments', 'EXPOSE requires at least one argument');
      const ports: string[] = [];
      for (const [i, p] of node.args.entries()) {
        let words: string[] = [];
        try {
          words = expandWords(p, scope.lookup, { escape: ctx.escape });
        } catch (e) {
          if (e instanceof ExpansionError) fail('expansion', `EXPOSE: ${e.message}`, text(p));
          throw e;
        }
        // Checked once expanded, as BuildKit does: `EXPOSE $PORT` is as good as the port it names.
        for (const w of words) {
          const problem = portProblem(w);
          if (problem)
            fail(
              'bad-port',
              `EXPOSE: ${problem}: a port is a number or a range (80, 8000-8010), ` +
                'with an optional /tcp, /udp or /sctp',
              arg(i),
            );
        }
        ports.push(...words);
      }
      return { ...base, kind: 'expose', ports };
    }
    case 'VOLUME': {
      if (node.args.length === 0) fail('arguments', 'VOLUME requires at least one argument');
      const paths = node.args.map(x);
      if (paths.some((p) => p.trim() === ''))
        fail('blank', 'VOLUME specified can not be an empty string', { kind: 'args' });
      return { ...base, kind: 'volume', paths };
    }
    case 'HEALTHCHECK':
      return healthcheck(node, base, flags, fail, arg, flagValue);
    case 'ONBUILD': {
      const sub = node.sub;
      if (!sub) fail('arguments', 'ONBUILD requires at least one argument');
      const trig: At = { kind: 'trigger', pointer: { cmd: sub!.cmd, at: { kind: 'keyword' } } };
      if (sub!.keyword === 'ONBUILD') fail('onbuild', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", trig);
      if (sub!.keyword === 'FROM' || sub!.keyword === 'MAINTAINER')
        fail('onbuild', `${sub!.keyword} isn't allowed as an ONBUILD trigger`, trig);
      // The trigger is stored as written, heredoc bodies included, for the image config.
      const trigger = triggerText(node);
      scope.onbuild.push(trigger);
      return { ...base, kind: 'onbuild', trigger };
    }
    default:
      return fail('unknown-instruction', `unknown instruction: ${node.cmd}`);
  }
}
