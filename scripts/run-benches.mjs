// `npm run bench`: runs every `bench:<name>` script of package.json in turn
// (each prints its JSON and writes bench/results/<name>.json); fails if any fails.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const { scripts } = JSON.parse(readFileSync('package.json', 'utf8'));
const benches = Object.keys(scripts).filter((name) => name.startsWith('bench:')).sort();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let failed = 0;
for (const name of benches) {
  process.stderr.write(`\n== npm run ${name}\n`);
  if (spawnSync(npm, ['run', '--silent', name], { stdio: 'inherit' }).status !== 0) failed += 1;
}
process.exit(failed ? 1 : 0);
