// `sfm runs ack`: an approver accepts a preflight finding from the command
// line, through the built CLI against the service on a real port and real
// PostgreSQL; the run leaves preflight_failed, no file is edited.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource as migration, writeMigrations } from '../support/migrations.js';
import { exits, listen, sfm } from './helpers.js';

let t: TestApp;
let url: string;
let dir: string;

const ACCOUNTS = migration('CREATE TABLE accounts (id int PRIMARY KEY, email text, legacy text)', 'DROP TABLE accounts');
const DROP_LEGACY = migration('ALTER TABLE accounts DROP COLUMN legacy', 'ALTER TABLE accounts ADD COLUMN legacy text');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-cli-ack-'));
  const config = `export default { environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] }, verify: { smokeEtl: false } } } };`;
  t = await startTestApp({ label: 'cli_ack', migrationConfigSource: config });
  await writeMigrations(dir, { '1000_accounts': ACCOUNTS });
  await applyMigrations(t.targets.staging.url, dir, 1);
  await t.targets.staging.query(`INSERT INTO accounts SELECT g, 'u' || g, 'l' FROM generate_series(1, 50) g`);
  await writeMigrations(dir, { '1000_accounts': ACCOUNTS, '2000_drop-legacy': DROP_LEGACY });
  url = await listen(t);
});

after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

describe('sfm runs ack', () => {
  test('an approver acknowledges the error finding; the run moves to awaiting_approval; --list shows it', async () => {
    const file = join(dir, '2000_drop-legacy.js');
    const bytes = await readFile(file);
    const created = await t.http().post('/v1/runs').set('authorization', bearer('rita')).send({ environment: 'staging', description: 'cli ack' });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    await t.settle();
    const report = (await t.http().get(`/v1/runs/${id}/preflight`).set('authorization', bearer('vic'))).body.report as { findings: Array<{ id: string; rule: string; severity: string }> };
    const drop = report.findings.find((f) => f.severity === 'error');
    assert.equal(drop?.rule, 'ban-drop-column', JSON.stringify(report.findings));

    const usage = await sfm(url, ['runs', 'ack', id, '--finding', drop.id], { as: 'carol' });
    exits(usage, 2, 'no --reason');
    assert.match(usage.stderr, /--finding <id> --reason <text>/);
    const badId = await sfm(url, ['runs', 'ack', id, '--finding', 'nope', '--reason', 'x'], { as: 'carol' });
    exits(badId, 2, 'a malformed finding id');
    const mine = await sfm(url, ['runs', 'ack', id, '--finding', drop.id, '--reason', 'my own'], { as: 'rita' });
    exits(mine, 3, 'the requester may not');
    assert.match(mine.stderr, /^error: 403 Forbidden/);

    const acked = await sfm(url, ['runs', 'ack', id, '--finding', drop.id, '--reason', 'legacy unused since release 41'], { as: 'carol' });
    exits(acked, 0, 'ack');
    assert.match(acked.stdout, new RegExp(`^Acknowledged ban-drop-column in 2000_drop-legacy \\(finding ${drop.id}\\) as sre carol, for digest [0-9a-f]{12}: legacy unused since release 41\nrun ${id} status=awaiting_approval\n$`));
    const run = (await t.http().get(`/v1/runs/${id}`).set('authorization', bearer('vic'))).body as { status: string };
    assert.equal(run.status, 'awaiting_approval');

    const list = await sfm(url, ['runs', 'ack', id, '--list'], { as: 'vic' });
    exits(list, 0, 'ack --list');
    assert.match(list.stdout, /^FINDING\s+RULE\s+MIGRATION\s+BY\s+ROLE\s+AT\s+REASON\n/);
    assert.match(list.stdout, new RegExp(`${drop.id}\\s+ban-drop-column\\s+2000_drop-legacy\\s+carol\\s+sre`));
    const json = await sfm(url, ['--json', 'runs', 'ack', id, '--list'], { as: 'vic' });
    exits(json, 0, 'ack --list --json');
    assert.deepEqual(JSON.parse(json.stdout).map((a: { finding: string }) => a.finding), [drop.id]);
    assert.deepEqual(await readFile(file), bytes, 'the migration file is untouched');
  });
});
