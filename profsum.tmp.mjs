import { readFileSync, readdirSync } from 'node:fs';
const dir = '/tmp/prof';
for (const f of readdirSync(dir)) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`));
  const self = new Map(); const byId = new Map(p.nodes.map(n => [n.id, n]));
  const dt = new Map();
  for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  let total = 0;
  for (const n of p.nodes) { const t = (dt.get(n.id) ?? 0) / 1000; total += t; const cf = n.callFrame; const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*node_modules\//, 'nm/').replace(/.*\/work\/main\//, '')}:${cf.lineNumber}`; self.set(key, (self.get(key) ?? 0) + t); }
  // by package/file
  const byFile = new Map();
  for (const n of p.nodes) { const t = (dt.get(n.id) ?? 0) / 1000; const u = n.callFrame.url.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, 'nm:$1').replace(/.*\/work\/main\/dist\/([^/]+\/[^/]+).*/, '$1') || '(native)'; byFile.set(u, (byFile.get(u) ?? 0) + t); }
  console.log(f, 'total ms', total.toFixed(0));
  console.log([...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => `${v.toFixed(0).padStart(6)} ${k}`).join('\n'));
  console.log('--- self');
  console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${v.toFixed(0).padStart(6)} ${k}`).join('\n'));
}
