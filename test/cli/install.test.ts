// sfm outside the checkout: `npm pack` makes a tarball holding the compiled
// CLI (package.json "files"), `npm install -g` of it puts `sfm` on PATH, and
// `sfm --version` prints package.json's version.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT } from '../../database/paths.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sf-sfm-install-'));
});
after(() => rm(tmp, { recursive: true, force: true }));

test('npm pack + npm install -g: sfm on PATH, --version from package.json', async () => {
  const { version } = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  // --ignore-scripts: npm test has just built dist/ (prepack would build it again).
  const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const [packed] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed!.files.map((f) => f.path);
  for (const need of ['package.json', 'dist/src/cli/sfm.js', 'dist/src/cli/program.js']) assert.ok(files.includes(need), `the tarball has ${need}`);
  assert.deepEqual(files.filter((f) => /^(dist\/(test|bench)|test|bench|\.data|node_modules)\//.test(f)), [], 'no tests, benchmarks, data or dependencies');

  const prefix = join(tmp, 'prefix');
  const install = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, packed!.filename)], { encoding: 'utf8' });
  assert.equal(install.status, 0, install.stderr);
  const sfm = join(prefix, 'bin', 'sfm');
  const run = spawnSync(sfm, ['--version'], { encoding: 'utf8', cwd: tmp, env: { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH}` } });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `${version}\n`);
  const help = spawnSync(sfm, ['--help'], { encoding: 'utf8', cwd: tmp });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /SFM_URL/);
});
