// The preflight starts creating the rehearsal copy before the rehearsal
// itself (its CREATE DATABASE goes on while the snapshot is written out).
// When the rehearsal then cannot start (the guard cannot open its record in
// the control database), or its seeding throws once the copy exists, the
// copy created ahead is dropped: none is left on the server for a sweep.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { migrateControlDatabase } from '../../database/control-migrate.js';
import type { EnvironmentConfig } from '../../services/environments/model.js';
import type { MigrationSource } from '../../services/migrations/source.js';
import { createEphemeralDatabase, ownerTag, runCopyPrefix } from '../../services/preflight/ephemeral.js';
import { rehearse, type RehearsalInput } from '../../services/preflight/rehearsal.js';
import { adminQuery, adminUrl, createTestDatabase, type TestDatabase } from '../support/db.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as RehearsalInput['ledger']['log'];

describe('a copy created ahead of the rehearsal', () => {
  let target: TestDatabase;
  let control: TestDatabase;
  // A control database without the service's tables: the guard's record cannot be opened there.
  let bareControl: TestDatabase;
  let pools: Record<'control' | 'bare', pg.Pool>;

  before(async () => {
    const [t, c, b] = await Promise.all(['early_copy_target', 'early_copy_ctl', 'early_copy_bare'].map((label) => createTestDatabase(label)));
    [target, control, bareControl] = [t!, c!, b!];
    await migrateControlDatabase(control.url);
    pools = { control: new pg.Pool({ connectionString: control.url, max: 2 }), bare: new pg.Pool({ connectionString: bareControl.url, max: 2 }) };
  });
  after(async () => {
    await Promise.all(Object.values(pools ?? {}).map((p) => p.end()));
    await Promise.all([target?.drop(), control?.drop(), bareControl?.drop()]);
  });

  const copies = async (owner: string, runId: string) =>
    (await adminQuery("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", [runCopyPrefix(owner, runId)])).rows.map((r) => r.datname as string);

  async function startAndFail(targetUrl: string, ledgerIn: 'control' | 'bare', expected: RegExp): Promise<void> {
    const runId = randomUUID();
    const owner = ownerTag(control.url);
    const created = createEphemeralDatabase(adminUrl(), owner, runId);
    const copy = { name: (await created).name, created };
    assert.equal((await copies(owner, runId)).length, 1, 'the copy exists before the rehearsal starts');
    const input: RehearsalInput = {
      runId, owner, copy, targetUrl, serverUrl: adminUrl(), targetServerMajor: 15,
      environment: { name: 'staging', migrationsSchema: 'public', migrationsTable: 'pgmigrations' } as EnvironmentConfig,
      applied: [], pending: ['1_x'], source: {} as MigrationSource,
      ledger: { control: pools[ledgerIn], digest: 'd'.repeat(64), log: quiet },
    };
    await assert.rejects(rehearse(input), expected);
    assert.deepEqual(await copies(owner, runId), [], 'the copy created ahead is dropped');
  }

  test('seeding throws once the copy exists (an environment without its preflight settings): the copy goes', async () => {
    await startAndFail(target.url, 'control', /preflight|undefined/i);
  });

  test('the guard cannot open its record in the control database: the copy goes', async () => {
    await startAndFail(target.url, 'bare', /rehearsal_globals|does not exist/i);
  });
});
