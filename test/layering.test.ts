// The layers point down and nothing goes round in circles: the environment
// model lives below the services, and no module reaches itself through its imports.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../database/paths.js';

const LAYERS = ['src', 'routes', 'services', 'database'];
const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+?)\.js['"]/g;

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(PROJECT_ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

async function graph(): Promise<Map<string, string[]>> {
  const files = (await Promise.all(LAYERS.map(sources))).flat();
  const known = new Set(files);
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const text = await readFile(join(PROJECT_ROOT, file), 'utf8');
    const to = [...text.matchAll(IMPORT)].map((m) => normalize(join(dirname(file), `${m[1]!}.ts`))).filter((t) => known.has(t));
    edges.set(file, to);
  }
  return edges;
}

test('services, routes and database import nothing of src/ but the type of the service settings', async () => {
  const offenders: string[] = [];
  for (const dir of ['routes', 'services', 'database']) {
    for (const file of await sources(dir)) {
      const text = await readFile(join(PROJECT_ROOT, file), 'utf8');
      for (const m of text.matchAll(/^import(\s+type)?[^'"]*['"](\.{1,2}\/[^'"]+?)\.js['"]/gm)) {
        const target = normalize(join(dirname(file), m[2]!));
        if (!target.startsWith('src/')) continue;
        // The AppConfig type is erased at build: no runtime edge upwards.
        if (m[1] && target === 'src/config/index') continue;
        offenders.push(`${file} -> ${target}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

test('no import circle among src, routes, services and database', async () => {
  const edges = await graph();
  // Tarjan's strongly connected components: any component of two or more files is a circle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index += 1; stack.push(v); onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); component.push(w); } while (w !== v);
      if (component.length > 1) circles.push(component.map((f) => relative('.', f)).sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  assert.deepEqual(circles, []);
});
