import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import { configSource, createItems, definitionsDir, itemsDefinition, until, updateHistogram, type DefinitionsDir } from '../backfills/helpers.js';
import { exits, listen, sfm, UUID } from './helpers.js';

// `sfm backfills ...` against the real backfill API on real PostgreSQL.
let t: TestApp;
let defs: DefinitionsDir;
let url: string;

before(async () => {
  defs = await definitionsDir();
  await defs.write('items-power', itemsDefinition());
  // No executor in this process until the test starts one: the job waits where the CLI put it.
  t = await startTestApp({ label: 'cli_backfills', migrationConfigSource: configSource(defs.dir), env: { BACKFILLS: 'off' } });
  await createItems(t.targets.staging, 2_000);
  url = await listen(t);
});

after(async () => {
  await t.close();
  await defs.remove();
});

test('sfm backfills start, list, show, pause, resume and cancel drive a job; refusals exit 3', async () => {
  const started = await sfm(url, ['--json', 'backfills', 'start', '--environment', 'staging', '--name', 'items-power', '--batch-size', '500', '--max-rows-per-second', '100000'], { as: 'olga' });
  exits(started, 0, 'start');
  const job = JSON.parse(started.stdout) as { id: string; status: string; name: string; batchSize: number };
  assert.match(job.id, UUID);
  assert.deepEqual([job.name, job.status, job.batchSize], ['items-power', 'pending', 500]);

  const list = await sfm(url, ['backfills', 'list', '--environment', 'staging'], { as: 'vic' });
  exits(list, 0, 'list');
  assert.ok(list.stdout.includes(job.id) && list.stdout.includes('items-power'), list.stdout);

  exits(await sfm(url, ['backfills', 'pause', job.id], { as: 'olga' }), 0, 'pause');
  const shown = await sfm(url, ['--json', 'backfills', 'show', job.id], { as: 'vic' });
  exits(shown, 0, 'show');
  assert.equal(JSON.parse(shown.stdout).status, 'paused');

  const again = await sfm(url, ['backfills', 'pause', job.id], { as: 'olga' });
  exits(again, 3, 'a second pause is a conflict');
  assert.match(again.stderr, /^error: 409 .*paused/m);
  const viewer = await sfm(url, ['backfills', 'resume', job.id], { as: 'vic' });
  exits(viewer, 3, 'a viewer cannot resume');
  assert.match(viewer.stderr, /^error: 403 /m);
  const unknown = await sfm(url, ['backfills', 'start', '--environment', 'staging', '--name', 'no-such-backfill'], { as: 'olga' });
  exits(unknown, 3, 'an unknown backfill');
  assert.match(unknown.stderr, /^error: 422 .*no-such-backfill/m);

  // Resumed and run to the end by an executor: every row once.
  exits(await sfm(url, ['backfills', 'resume', job.id], { as: 'olga' }), 0, 'resume');
  t.config.backfills = true;
  t.app.services.backfillExecutor.start();
  const done = await until('the job to succeed', async () => {
    const res = await sfm(url, ['--json', 'backfills', 'show', job.id], { as: 'vic' });
    const body = JSON.parse(res.stdout) as { status: string; rowsDone: number };
    return body.status === 'succeeded' ? body : undefined;
  });
  assert.equal(done.rowsDone, 2_000);
  assert.deepEqual(await updateHistogram(t.targets.staging), { 1: 2_000 });
  const cancel = await sfm(url, ['backfills', 'cancel', job.id], { as: 'olga' });
  exits(cancel, 3, 'a finished job cannot be cancelled');
  assert.match(cancel.stderr, /^error: 409 /m);
});
