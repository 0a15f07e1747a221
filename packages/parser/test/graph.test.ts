import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileError, baseImages, buildGraph, parse } from '../src/index.js';
import type { BaseConfig, GraphOptions } from '../src/index.js';
import { fixtures } from './paths.js';

// Each fixtures/<case>/ holds a Dockerfile, an optional options.json
// ({ buildArgs, target, buildPlatform, targetPlatform, baseConfigs: { ref: config } })
// and graph.json: { baseImages, graph } or { error: { code, message, location } }.
// The goldens were written by this parser (UPDATE=1) and reviewed by hand; no independent tool made them
// (see the README's Tests section for what is cross-checked). A case without graph.json fails: only
// UPDATE=1 writes or rewrites it, and then the diff is to be read before it is committed.

function run(dir: string): unknown {
  const text = readFileSync(join(dir, 'Dockerfile'), 'utf8');
  const raw = existsSync(join(dir, 'options.json')) ? JSON.parse(readFileSync(join(dir, 'options.json'), 'utf8')) : {};
  const configs: Record<string, BaseConfig> = raw.baseConfigs ?? {};
  const opts: GraphOptions = { ...raw, file: 'Dockerfile', baseConfig: (ref) => configs[ref] };
  delete (opts as Record<string, unknown>)['baseConfigs'];
  try {
    const df = parse(text, { file: 'Dockerfile' });
    return { baseImages: baseImages(df, opts), graph: buildGraph(df, opts) };
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
    return { error: { code: e.code, message: e.message, location: e.location } };
  }
}

for (const name of readdirSync(fixtures).sort()) {
  const dir = join(fixtures, name);
  test(`fixture: ${name}`, () => {
    const got = run(dir);
    const file = join(dir, 'graph.json');
    if (process.env['UPDATE'] === '1') {
      // A CI run that rewrites its goldens checks nothing.
      assert.ok(process.env['CI'] !== 'true', 'UPDATE=1 under CI=true');
      writeFileSync(file, JSON.stringify(got, null, 2) + '\n');
      return;
    }
    assert.ok(existsSync(file), `${name}: no graph.json golden (write it with UPDATE=1, then review it)`);
    assert.equal(got, JSON.parse(readFileSync(file, 'utf8')));
  });
}

// BuildKit parses every instruction of every stage before it builds any: an error its parse finds fails
// the build even in a stage the target does not need (dockerd 20.10, differential case
// fail-unused-stage-error). What it finds only while building a stage (expansion, ports, --from names,
// --chown) does not. Each row is the second line of `FROM base AS unused / LINE / FROM base / RUN true`.
const unusedStage: [line: string, refused: string | undefined][] = [
  ['ONBUILD ONBUILD RUN x', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
  ['ONBUILD FROM x', "FROM isn't allowed as an ONBUILD trigger"],
  ['ONBUILD MAINTAINER x', "MAINTAINER isn't allowed as an ONBUILD trigger"],
  ['COPY onlyone', 'COPY requires at least two arguments'],
  ['HEALTHCHECK --retries=x CMD true', 'invalid --retries value "x"'],
  ['HEALTHCHECK --interval=bad CMD true', 'invalid duration "bad"'],
  ['USER', 'USER requires exactly one argument'],
  ['STOPSIGNAL', 'STOPSIGNAL requires exactly one argument'],
  ['WORKDIR', 'WORKDIR requires exactly one argument'],
  ['ARG', 'ARG requires at least one argument'],
  ['SHELL echo', 'SHELL requires the arguments to be in JSON form'],
  ['VOLUME', 'VOLUME requires at least one argument'],
  ['EXPOSE abc', undefined],
  ['ENV A=${B:?required}', undefined],
  ['COPY --from=nosuchstage /a /b', undefined],
  ['ADD --chown=a:b:c f /x', undefined],
  ['VOLUME $EMPTY', undefined],
  ['ENV ${EMPTY}=x', undefined],
  // Empty only once expanded: BuildKit's parse looks at the word as written, quotes and all.
  ['VOLUME ""', undefined],
  ['VOLUME ${X:+}', undefined],
  ['ENV ""=1', undefined],
  ['ENV ${X:+}=1', undefined],
  ['LABEL ""=1', undefined],
  // --mount values as written (differential case fail-unused-stage-mount).
  ['RUN --mount=type=bogus true', 'unsupported mount type "bogus"'],
  ['RUN --mount=type=bind,bogus=1 true', "unexpected key 'bogus' in 'bogus=1'"],
  ['RUN --mount=type=cache,target=/x,foo true', "invalid field 'foo' must be a key=value pair"],
  ['RUN --mount=type=cache,target=/x,required true', "unexpected key 'required' for mount type 'cache'"],
  ['RUN --mount=type=cache,sharing=bogus,target=/x true', 'unsupported sharing value "bogus"'],
  ['RUN --mount=type=bind,target=/x,sharing=private true', 'invalid cache sharing set for bind mount'],
  ['RUN --mount=type=cache,uid=abc,target=/x true', 'invalid value abc for uid'],
  ['RUN --mount=type=bind,target=/x,mode=0777 true', 'mode not allowed for "bind" type mounts'],
  ['RUN --mount=type=bind,target=/x,rw=maybe true', 'invalid value for rw: maybe'],
  ['RUN --mount=type=secret true', 'invalid secret mount'],
  ['RUN --mount=type=secret,id=a,from=x true', 'secret mount should not have a from'],
  ['RUN --mount=type=secret,id=a,src=b true', "both source and id can't be set"],
  ['RUN --mount=type=bind,target=/x,"a=b true', "unexpected key 'a' in 'a=b true'"],
  // Found by BuildKit only when it builds the stage.
  ['RUN --mount=type=bind true', undefined],
  ['RUN --mount=type=bind,target=/ true', undefined],
  ['RUN --mount=type=ssh,from=a true', undefined],
  ['RUN --mount=target=/x,from=nosuchstage true', undefined],
  // 20.10 refuses these too (it does not expand --mount values); tsbuild expands them when it builds the
  // stage, so it judges them only then, as current BuildKit does.
  ['RUN --mount=type=$T,target=/x true', undefined],
  ['RUN --mount=type=cache,uid=$U,target=/x true', undefined],
];
for (const [line, refused] of unusedStage) {
  test(`an unused stage's ${JSON.stringify(line)}: ${refused ? 'refused' : 'accepted'}`, () => {
    const text = `FROM busybox AS unused\n${line}\nFROM busybox\nRUN true\n`;
    let got: DockerfileError | undefined;
    try {
      buildGraph(parse(text, { file: 'Dockerfile' }), { file: 'Dockerfile' });
    } catch (e) {
      if (!(e instanceof DockerfileError)) throw e;
      got = e;
    }
    if (refused === undefined) assert.is(got, undefined, got?.message);
    else {
      assert.ok(got, 'accepted');
      assert.ok(got!.message.includes(refused), got!.message);
      assert.is(got!.location.line, 2);
    }
  });
}

test.run();
