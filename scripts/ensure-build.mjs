// `npm start` builds only what is missing or older than its sources: the
// service (tsc -> dist/) and the web console (vite -> dist/console/).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestSource(dir, pattern) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path, pattern));
    else if (pattern.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}
const newest = (dirs, pattern) => Math.max(0, ...dirs.filter(existsSync).map((d) => newestSource(d, pattern)));

const out = 'dist/.tsbuildinfo';
if (!existsSync(out) || !existsSync('dist/src/server.js') || newest(['src', 'routes', 'services', 'database'], /\.ts$/) > statSync(out).mtimeMs) {
  console.error('Building (tsc)...');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}

const page = 'dist/console/index.html';
if (!existsSync(page) || Math.max(newest(['console'], /\.(ts|tsx|css|html)$/), statSync('package-lock.json').mtimeMs) > statSync(page).mtimeMs) {
  console.error('Building the console (vite)...');
  execFileSync('npm', ['run', '--silent', 'build:console'], { stdio: 'inherit' });
}
