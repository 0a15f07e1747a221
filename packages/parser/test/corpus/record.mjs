#!/usr/bin/env node
// Writes expected.json: for every Dockerfile of the corpus, its stages as the file itself says, read by a small
// line-level reader that shares no code with the parser (an independent oracle for the corpus test):
// continuation lines joined (the `# escape=` directive honoured, comment and blank lines inside a continuation
// skipped, as BuildKit does), heredoc bodies skipped, and for each FROM line: the image word as written, the
// `AS` name, and the global ARG defaults declared before the first FROM (for expanding `FROM ${BASE}`).
// Hand-written fields of an entry (`buildArgs`, `note`) are kept. Run after collect.mjs: `node record.mjs`.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = join(here, 'expected.json');
const old = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};

export function corpusFiles(root = here) {
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!/^LICENSE/.test(e.name)) files.push(relative(root, p));
    }
  };
  for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) walk(join(root, e.name));
  return files.sort();
}

export function stagesOf(text) {
  const lines = text.split(/\r?\n/);
  let escape = '\\';
  // Parser directives: leading `# key=value` comments, before anything else.
  for (const l of lines) {
    const m = /^#\s*([a-z]+)\s*=\s*(\S+)\s*$/i.exec(l);
    if (!m) break;
    if (m[1].toLowerCase() === 'escape') escape = m[2];
  }
  const logical = [];
  let cur = null;
  let heredocEnd = null;
  for (const raw of lines) {
    if (heredocEnd) {
      if (raw.replace(/^\t+/, '') === heredocEnd || raw === heredocEnd) heredocEnd = null;
      continue;
    }
    const t = raw.trim();
    if (cur === null && (t === '' || t.startsWith('#'))) continue;
    if (cur !== null && (t === '' || t.startsWith('#'))) continue;  // inside a continuation
    const cont = t.endsWith(escape);
    const piece = cont ? t.slice(0, -escape.length) : t;
    cur = cur === null ? piece : `${cur} ${piece}`;
    if (!cont) {
      logical.push(cur);
      const h = /^(RUN|COPY|ADD)\s.*<<-?\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?/i.exec(cur);
      if (h) heredocEnd = h[2];
      cur = null;
    }
  }
  if (cur !== null) logical.push(cur);
  const args = {};
  const stages = [];
  for (const l of logical) {
    const words = l.split(/\s+/);
    const kw = words[0].toUpperCase();
    if (kw === 'ARG' && stages.length === 0) {
      for (const w of words.slice(1)) {
        const eq = w.indexOf('=');
        if (eq > 0) args[w.slice(0, eq)] = w.slice(eq + 1).replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
      }
    }
    if (kw !== 'FROM') continue;
    const rest = words.slice(1).filter((w) => !w.startsWith('--'));
    const stage = { from: rest[0] };
    if (rest.length >= 3 && rest[1].toUpperCase() === 'AS') stage.name = rest[2].toLowerCase();
    stages.push(stage);
  }
  return { globalArgs: args, stages };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const expected = {};
  for (const f of corpusFiles()) {
    if (/\.(json|mjs|md)$/.test(f)) continue;
    const keep = Object.fromEntries(Object.entries(old[f] ?? {}).filter(([k]) => k === 'buildArgs' || k === 'note'));
    expected[f] = { ...keep, ...stagesOf(readFileSync(join(here, f), 'utf8')) };
  }
  writeFileSync(out, JSON.stringify(expected, null, 1) + '\n');
  console.log(`${Object.keys(expected).length} files`);
}
