#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof --cpu-prof-dir=DIR packages/builder/bin/tsbuild.js ...`):
// top self time by function, by file, and inclusive time of project/package functions.
//   node bench/cpuprofile-top.mjs DIR|FILE [N]
import { readFileSync, readdirSync, statSync } from 'node:fs';
const arg = process.argv[2];
const file = statSync(arg).isDirectory() ? `${arg}/${readdirSync(arg).find((x) => x.endsWith('.cpuprofile'))}` : arg;
const N = Number(process.argv[3] ?? 15);
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const dt = new Map();
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const short = (u) => u.replace('file://', '').replace(/.*\/(packages|node_modules)\//, '$1/');
const name = (n) => `${n.callFrame.functionName || '(anon)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const self = new Map(),
  files = new Map(),
  incl = new Map();
let total = 0;
for (const [id, t] of dt) {
  const n = byId.get(id);
  self.set(name(n), (self.get(name(n)) ?? 0) + t);
  const f = short(n.callFrame.url) || n.callFrame.functionName;
  files.set(f, (files.get(f) ?? 0) + t);
  total += t;
  const seen = new Set();
  for (let x = id; x !== undefined; x = parent.get(x)) {
    const k = name(byId.get(x));
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
}
const show = (title, m, filter = () => true) => {
  console.log(`-- ${title}`);
  for (const [k, t] of [...m]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, N))
    console.log(`${(t / 1000).toFixed(1).padStart(9)} ms  ${k}`);
};
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
show('self time', self);
show('self time by file', files);
show('inclusive, project and package code', incl, (k) => /packages\/|node_modules\//.test(k));
