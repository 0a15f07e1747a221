#!/usr/bin/env node
// Refreshes the corpus from local git clones of the projects listed in projects.json:
//
//   node collect.mjs OWNER/REPO=/path/to/clone [OWNER/REPO=/path/to/clone ...]
//
// For each, it copies every Dockerfile of the clone's HEAD (names `Dockerfile`, `Dockerfile.*`, `*.Dockerfile`,
// `*.dockerfile`; never `*.template`, which are inputs to a generator, not Dockerfiles) into <owner>__<repo>/,
// keeping the path, plus the project's licence file, skips files listed in projects.json's `exclude` (with the
// reason there), keeps at most `max` files (evenly spread over the sorted list) for projects that generate hundreds
// of near-identical files, and records the commit in projects.json. Then run `node record.mjs` to rewrite
// expected.json. Nothing here runs in the test suite.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const projects = JSON.parse(readFileSync(join(here, 'projects.json'), 'utf8'));
const isDockerfile = (p) => {
  const base = p.split('/').pop();
  if (/\.(template|dockerignore|md|txt|json|ya?ml|sh|go)$/i.test(base)) return false;
  return /^Dockerfile([.-][^/]*)?$/i.test(base) || /\.dockerfile$/i.test(base);
};

for (const arg of process.argv.slice(2)) {
  const [name, clone] = arg.split('=');
  const p = projects.find((x) => x.repo === name);
  if (!p) throw new Error(`${name} is not in projects.json`);
  const git = (...a) => execFileSync('git', ['-C', clone, ...a], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const commit = git('rev-parse', 'HEAD').trim();
  // An exclude names a file or a folder, with the reason as its value.
  const excluded = Object.keys(p.exclude ?? {});
  const isExcluded = (f) => excluded.some((x) => f === x || f.startsWith(`${x}/`));
  let files = git('ls-tree', '-r', '--name-only', 'HEAD').split('\n').filter((f) => f && isDockerfile(f) && !isExcluded(f));
  files.sort();
  if (p.max && files.length > p.max) {
    const step = files.length / p.max;
    files = Array.from({ length: p.max }, (_, i) => files[Math.floor(i * step)]);
  }
  const dir = join(here, name.replace('/', '__'));
  rmSync(dir, { recursive: true, force: true });
  const seen = new Set();
  let kept = 0;
  for (const f of files) {
    const text = git('show', `HEAD:${f}`);
    if (seen.has(text)) continue;  // the same file under another path adds nothing
    seen.add(text);
    mkdirSync(join(dir, dirname(f)), { recursive: true });
    writeFileSync(join(dir, f), text);
    kept++;
  }
  writeFileSync(join(dir, 'LICENSE'), git('show', `HEAD:${p.licenseFile}`));
  p.commit = commit;
  p.files = kept;
  console.log(`${name}: ${kept} files at ${commit.slice(0, 12)}`);
}
writeFileSync(join(here, 'projects.json'), JSON.stringify(projects, null, 2) + '\n');
