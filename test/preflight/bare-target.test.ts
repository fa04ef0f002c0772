// A fresh target (no history, nothing a schema dump would copy) is rehearsed
// on the empty copy as created, without pg_dump and pg_restore; a target
// with no table and no history but a schema object of its own (a function a
// migration uses) is still dumped, or its rehearsal would fail for nothing.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { holdsSchemaObjects } from '../../database/sql/preflight.js';
import { cancelActiveRuns, dirMigrationConfig, bearer, startTestApp, type TestApp } from '../support/app.js';
import { migrationSource as migration, writeMigrations } from '../support/migrations.js';

let t: TestApp;
let dir: string;

async function preflight(): Promise<{ status: string; report: { outcome: string; rehearsal: { seededFrom: string }; checks: Array<{ id: string; detail: string }> } }> {
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'bare target' });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const run = (await t.http().get(`/v1/runs/${res.body.id}`).set('authorization', bearer('vic'))).body;
  const { report } = (await t.http().get(`/v1/runs/${res.body.id}/preflight`).set('authorization', bearer('vic'))).body;
  return { status: run.status, report };
}

async function holds(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(holdsSchemaObjects())).rows[0].holds;
  } finally {
    await client.end();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-bare-target-'));
  await writeMigrations(dir, {
    '1700000000001_accounts': migration('CREATE TABLE accounts (id bigint PRIMARY KEY, code text DEFAULT make_code())', 'DROP TABLE accounts'),
  });
  const config = dirMigrationConfig(dir);
  t = await startTestApp({ label: 'bare_target', migrationConfigSource: config });
});

afterEach(async () => {
  await cancelActiveRuns(t);
  // Not a new public schema: its oid would be a user object's, and the target no longer bare.
  await t.targets.staging.query('DROP FUNCTION IF EXISTS make_code()');
});

after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a fresh target', () => {
  test('what counts as holding something: any object of its own, or a changed comment on public', async () => {
    const url = t.targets.staging.url;
    assert.equal(await holds(url), false, 'a database as created holds nothing');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const sql of ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE TYPE mood AS ENUM ('ok')", 'CREATE SCHEMA s', 'CREATE SEQUENCE q',
        "COMMENT ON SCHEMA public IS 'ours'", 'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC']) {
        await client.query('BEGIN');
        try {
          await client.query(sql);
          // Read in the same transaction: it sees the object before anything commits.
          assert.equal((await client.query(holdsSchemaObjects())).rows[0].holds, true, sql);
        } finally {
          await client.query('ROLLBACK');
        }
      }
    } finally {
      await client.end();
    }
    assert.equal(await holds(url), false, 'all rolled back');
  });

  test('no history and no schema object: the copy is not seeded, and the migration that needs make_code() fails as it would on the target', async () => {
    const { status, report } = await preflight();
    assert.equal(report.rehearsal.seededFrom, 'empty');
    assert.equal(status, 'preflight_failed', 'make_code() does not exist on the target either');
    assert.match(report.checks.find((c) => c.id === 'rehearsal')!.detail, /on an empty copy/);
  });

  test('no table, no history, but a function of its own: dumped, and the rehearsal finds it', async () => {
    await t.targets.staging.query("CREATE FUNCTION make_code() RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$");
    const { status, report } = await preflight();
    assert.equal(report.rehearsal.seededFrom, 'pg_dump');
    assert.equal(status, 'awaiting_approval', JSON.stringify(report.checks));
  });
});
