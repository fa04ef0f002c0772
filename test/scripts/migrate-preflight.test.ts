import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../database/paths.js';
import { adminQuery, adminUrl, createTestDatabase, type TestDatabase } from '../support/db.js';
import { FIXTURE_BASE, FIXTURES, migrationSource, writeMigrations } from '../support/migrations.js';

// scripts/migrate-preflight.sh, run as an operator would: a child process
// against real databases. Its rehearsal copies and its private control
// database live on the test server (PREFLIGHT_DATABASE_URL).
const run = promisify(execFile);
const SCRIPT = join(PROJECT_ROOT, 'scripts/migrate-preflight.sh');

let target: TestDatabase;
let dir: string;
let configFile: string;

async function preflight(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(SCRIPT, args, {
      cwd: PROJECT_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        MIGRATION_CONFIG: configFile,
        STAGING_DATABASE_URL: target.url,
        PREFLIGHT_DATABASE_URL: adminUrl(),
        ...env,
      },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function leftovers(): Promise<string[]> {
  // Only this script's databases: other test files rehearse on the same server at the same time.
  const res = await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE 'sf_preflight_script_%'`);
  return res.rows.map((r) => r.datname as string);
}

before(async () => {
  target = await createTestDatabase('pfscript');
  dir = await mkdtemp(join(tmpdir(), 'sf-pfscript-'));
  configFile = join(dir, 'migration-config.js');
  // A webhook whose variable is unset: the service would refuse to start, the
  // local script (which never notifies) must not care.
  await writeFile(configFile, `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(join(dir, 'migrations'))}, verify: { smokeEtl: false },
      notify: [{ kind: 'slack', urlEnv: 'UNSET_SLACK_HOOK' }] } } };`);
  await mkdir(join(dir, 'migrations'));
});

after(async () => {
  await target.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('scripts/migrate-preflight.sh', () => {
  test('a clean set: connectivity, the pending list, a passing rehearsal, pgcrypto not configured; exit 0, report written, target untouched', async () => {
    await writeMigrations(join(dir, 'migrations'), { ...FIXTURE_BASE, '1200_add-note': FIXTURES.addNote });
    const before = await leftovers();
    const out = join(dir, 'report.json');
    const res = await preflight(['--environment', 'staging', '--format', 'json', '--output', out]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /^PASS connectivity: PostgreSQL 15/m);
    // No migration here creates pgcrypto and the target lacks it: not configured, not a failure or a warning.
    assert.match(res.stderr, /^SKIP pgcrypto: not configured/m);
    assert.match(res.stderr, /^SKIP rehearsal-smoke-etl: Not configured/m);
    assert.match(res.stderr, /Pending migrations \(3\):\n {2}- 1000_etl-control\n {2}- 1100_create-accounts\n {2}- 1200_add-note/);
    // A fresh target: nothing to dump, the copy starts empty.
    assert.match(res.stderr, /^PASS rehearsal: up 3\/3, down 3\/3, up again 3\/3; on an empty copy \(the target has no history and no schema objects/m);
    assert.match(res.stderr, /^PASSED: 0 error\(s\)/m);
    const report = JSON.parse(await readFile(out, 'utf8'));
    assert.equal(report.outcome, 'passed');
    assert.deepEqual(report.migrations.map((m: { name: string }) => m.name), ['1000_etl-control', '1100_create-accounts', '1200_add-note']);
    const tables = await target.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
    assert.equal(tables.rows[0].n, 0, 'nothing was applied to the target');
    assert.deepEqual(await leftovers(), before, 'the private control database is dropped');
  });

  test('a migration that fails on the rehearsal copy is a finding: exit 1 with the migration and the error', async () => {
    await writeMigrations(join(dir, 'migrations'), { ...FIXTURE_BASE, '1200_broken': migrationSource('ALTER TABLE no_such_table ADD COLUMN x int') });
    const res = await preflight(['--format', 'md']);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /ERROR rehearsal-failed \[1200_broken\]: .*no_such_table/);
    assert.match(res.stderr, /^FAILED: 1 error\(s\)/m);
    assert.match(res.stdout, /^# Preflight report: staging run /m);
    assert.match(res.stdout, /Outcome: \*\*FAILED\*\*/);
  });

  test('--strict fails on warnings too', async () => {
    // CREATE EXTENSION is a warning (privileges and availability), not an error.
    await writeMigrations(join(dir, 'migrations'), { ...FIXTURE_BASE, '1200_pgcrypto': migrationSource('CREATE EXTENSION IF NOT EXISTS pgcrypto') });
    const relaxed = await preflight([]);
    assert.equal(relaxed.code, 0, relaxed.stderr);
    assert.match(relaxed.stderr, /WARNING create-extension \[1200_pgcrypto\]/);
    // A migration creates it: the target check of that extension, not a SKIP.
    assert.match(relaxed.stderr, /^PASS extension:pgcrypto: /m);
    assert.doesNotMatch(relaxed.stderr, /^SKIP pgcrypto/m);
    const strict = await preflight(['--strict']);
    assert.equal(strict.code, 1, strict.stderr);
  });

  test('the closing counts match the finding lines: an acknowledged finding is listed and counted as acknowledged, not as a warning', async () => {
    // A table the target has already (one the run creates could lose nothing).
    await target.query('CREATE TABLE legacy_users (id int, email text)');
    const drop = migrationSource('ALTER TABLE legacy_users DROP COLUMN email', 'ALTER TABLE legacy_users ADD COLUMN email text', { comment: '// lint-ack: ban-drop-column email moved to the profile (OPS-7)' });
    await writeMigrations(join(dir, 'migrations'), { ...FIXTURE_BASE, '1200_pgcrypto': migrationSource('CREATE EXTENSION IF NOT EXISTS pgcrypto'), '1300_drop-email': drop });
    const res = await preflight(['--strict']).finally(() => target.query('DROP TABLE legacy_users'));
    const lines = (label: string) => res.stderr.split('\n').filter((l) => l.startsWith(`  ${label} `)).length;
    const counts = /^(PASSED|FAILED): (\d+) error\(s\), (\d+) warning\(s\)(?:, (\d+) acknowledged)?/m.exec(res.stderr);
    assert.ok(counts, res.stderr);
    assert.deepEqual([Number(counts[2]), Number(counts[3]), Number(counts[4] ?? 0)], [lines('ERROR'), lines('WARNING'), lines('ACKNOWLEDGED')], res.stderr);
    assert.equal(lines('ACKNOWLEDGED'), 1, res.stderr);
    assert.match(res.stderr, /ACKNOWLEDGED ban-drop-column \[1300_drop-email\]: .*\(acknowledged: email moved to the profile \(OPS-7\)\)/);
    assert.equal(res.code, 1, 'the create-extension warning still fails --strict');
  });

  test('nothing pending: exit 0 and says the environment is up to date', async () => {
    await writeMigrations(join(dir, 'migrations'), {});
    const res = await preflight([]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /none; staging is up to date/);
  });

  test('an unreachable database is exit 3 without its password; usage and configuration errors are exit 2', async () => {
    const secret = 'pf-s3cret-p@ss';
    const down = await preflight([], { STAGING_DATABASE_URL: `postgres://u:${encodeURIComponent(secret)}@127.0.0.1:1/x` });
    assert.equal(down.code, 3, down.stderr);
    assert.match(down.stderr, /cannot reach staging's database: connection refused/);
    assert.equal(`${down.stdout}${down.stderr}`.includes('s3cret'), false);
    assert.equal(`${down.stdout}${down.stderr}`.includes(encodeURIComponent(secret)), false);

    const unknown = await preflight(['--environment', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown environment "nope" \(configured: staging\)/);
    const unset = await preflight([], { STAGING_DATABASE_URL: '' });
    assert.equal(unset.code, 2);
    assert.match(unset.stderr, /STAGING_DATABASE_URL is not set/);
    const badFlag = await preflight(['--frobnicate']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /usage: scripts\/migrate-preflight\.sh/);
    const help = await preflight(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit codes: 0 clean, 1 findings/);
  });
});
