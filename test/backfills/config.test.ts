// The backfill settings: BACKFILLS and BACKFILL_LEASE_SECONDS (service), and
// each environment's backfillsDir and backfillPressure (migration config).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { parseMigrationConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';

const parse = (env: object) => parseMigrationConfig({ environments: { qa: { databaseUrlEnv: 'QA_DATABASE_URL', ...env } } }, PROJECT_ROOT).qa!;
const refused = (fn: () => unknown, key: string) => assert.throws(fn, (err: unknown) => err instanceof ConfigError && err.message.includes(key), `expected ${key} to be refused`);

test('BACKFILLS is on by default; BACKFILL_LEASE_SECONDS 30, from 2 to 3600', async () => {
  const defaults = await loadConfig({});
  assert.equal(defaults.backfills, true);
  assert.equal(defaults.backfillLeaseSeconds, 30);
  const set = await loadConfig({ BACKFILLS: 'off', BACKFILL_LEASE_SECONDS: '5' });
  assert.equal(set.backfills, false);
  assert.equal(set.backfillLeaseSeconds, 5);
  await assert.rejects(loadConfig({ BACKFILLS: 'maybe' }), /BACKFILLS/);
  await assert.rejects(loadConfig({ BACKFILL_LEASE_SECONDS: '1' }), /BACKFILL_LEASE_SECONDS/);
  await assert.rejects(loadConfig({ BACKFILL_LEASE_SECONDS: 'x' }), /BACKFILL_LEASE_SECONDS/);
});

test('backfillsDir defaults to database/backfills, resolves relative paths from the project root; backfillPressure is validated', () => {
  const qa = parse({});
  assert.equal(qa.backfillsDir, join(PROJECT_ROOT, 'database/backfills'));
  assert.deepEqual(qa.backfillPressure, { maxActiveSessions: 50, maxReplicaLagSeconds: 10 });
  assert.equal(parse({ backfillsDir: 'ops/backfills' }).backfillsDir, join(PROJECT_ROOT, 'ops/backfills'));
  assert.equal(parse({ backfillsDir: '/srv/backfills' }).backfillsDir, '/srv/backfills');
  assert.deepEqual(parse({ backfillPressure: { maxActiveSessions: 5, maxReplicaLagSeconds: 2 } }).backfillPressure, { maxActiveSessions: 5, maxReplicaLagSeconds: 2 });
  refused(() => parse({ backfillsDir: '' }), 'environments.qa.backfillsDir');
  refused(() => parse({ backfillPressure: { maxActiveSessions: 0 } }), 'environments.qa.backfillPressure.maxActiveSessions');
  refused(() => parse({ backfillPressure: { lag: 1 } }), 'environments.qa.backfillPressure.lag');
  refused(() => parse({ backfilsDir: 'x' }), 'environments.qa.backfilsDir');
});
