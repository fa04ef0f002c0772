// `npm run bench`: builds once, then runs every `bench:<name>` script of
// package.json in turn (each prints its JSON and writes bench/results/<name>.json).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const { scripts } = JSON.parse(readFileSync('package.json', 'utf8'));
const benches = Object.keys(scripts).filter((name) => name.startsWith('bench:')).sort();
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
let failed = 0;
for (const name of benches) {
  // The compiled file directly: the bench:* scripts build first themselves, which was just done.
  const file = `dist/bench/${name.slice('bench:'.length)}.js`;
  process.stderr.write(`\n== ${name} (${file})\n`);
  const run = spawnSync(process.execPath, [file], { stdio: 'inherit' });
  if (run.status !== 0) failed += 1;
}
process.exit(failed ? 1 : 0);
