// Apply policy per environment: production (confirm, the default where an sre
// approves) stays approved until an operator confirms with its name; inside
// an open window the confirmation applies at once, outside it arms the run for
// its next window. Staging (auto) is scheduled by its approval, as before.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { applyMigrations, FIXTURE_BASE, FIXTURES, writeMigrations } from '../support/migrations.js';
import { MIN, nextAtHour, policyApi, resetTargets, startPolicyApp, WINDOW_HOUR, type PolicyApp } from './helpers.js';

let closed: PolicyApp;
let open: PolicyApp;

before(async () => {
  closed = await startPolicyApp({ label: 'mode_closed' });
  // A production window that is always open.
  open = await startPolicyApp({ label: 'mode_open', productionWindows: `[{ cron: '0 0 * * *', durationMinutes: 1440, timezone: 'UTC' }]` });
});
after(async () => {
  await closed.close();
  await open.close();
});
afterEach(async () => {
  await resetTargets(closed.t);
  await resetTargets(open.t);
});

async function pendingNote(app: PolicyApp, environment: 'staging' | 'production') {
  const dir = environment === 'staging' ? app.stagingDir : app.productionDir;
  await writeMigrations(dir, FIXTURE_BASE);
  await applyMigrations(app.t.targets[environment].url, dir, 2);
  await writeMigrations(dir, { ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote });
}

describe('apply mode', () => {
  test('GET /v1/environments shows each environment\'s mode', async () => {
    const envs = (await policyApi(closed.t).call('get', '/v1/environments', 'vic')).body as Array<{ name: string; applyMode: string; requires: unknown }>;
    assert.deepEqual(envs.map((e) => [e.name, e.applyMode, e.requires]), [['staging', 'auto', null], ['production', 'confirm', null]]);
  });

  test('production outside its window: approved until an operator confirms; the confirmation (audited) arms it for the next window, where the tick applies it', async () => {
    const api = policyApi(closed.t);
    await pendingNote(closed, 'production');
    const id = await api.created('production');
    const approved = await api.approve(id, 'production');
    assert.equal(approved.status, 'approved', 'the last approval does not schedule it');
    assert.equal(approved.scheduledFor, null);
    const waiting = (await api.events(id)).find((e) => e.type === 'apply.awaiting_confirmation')!;
    assert.equal(waiting.details.mode, 'confirm');

    // Nothing starts it without the confirmation: not a tick at the window either.
    const windowStart = nextAtHour(WINDOW_HOUR);
    assert.deepEqual((await api.tick(new Date(windowStart.getTime() + MIN))).started, []);
    assert.equal((await api.run(id)).status, 'approved');
    const columns = async () => (await closed.t.targets.production.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts' ORDER BY ordinal_position`)).rows.map((r) => r.column_name);
    assert.deepEqual(await columns(), ['id', 'email']);

    // Only an operator confirms, with the environment's name.
    assert.equal((await api.call('post', `/v1/runs/${id}/apply`, 'carol', { confirm: 'production' })).status, 403);
    const wrong = await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' });
    assert.equal(wrong.status, 422, wrong.text);
    assert.equal((await api.run(id)).status, 'approved');

    const before = Date.now();
    const confirmed = await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production' });
    assert.equal(confirmed.status, 202, confirmed.text);
    assert.equal(confirmed.body.status, 'scheduled');
    assert.equal(confirmed.body.scheduledFor, windowStart.toISOString());
    const events = await api.events(id);
    const confirmation = events.find((e) => e.type === 'apply.confirmed')!;
    assert.equal(confirmation.actor, 'olga');
    assert.ok(Date.parse(confirmation.at) >= before - 1000, 'when: the event time');
    assert.equal(confirmation.details.outcome, 'scheduled');
    assert.equal(confirmation.details.confirm, 'production');
    assert.equal(confirmation.details.scheduledFor, windowStart.toISOString());
    const scheduled = events.find((e) => e.type === 'run.scheduled')!;
    assert.equal(scheduled.actor, 'olga');

    // A second confirmation outside the window keeps the slot.
    const again = await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production' });
    assert.equal(again.status, 409, again.text);
    assert.match(again.body.detail, /already scheduled for/);

    assert.deepEqual((await api.tick(new Date(windowStart.getTime() - MIN))).started, [], 'not before its window');
    assert.deepEqual((await api.tick(new Date(windowStart.getTime() + MIN))).started, [id]);
    await closed.t.settle();
    const done = await api.run(id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(await columns(), ['id', 'email', 'note']);
  });

  test('production inside an open window: the confirmation applies at once', async () => {
    const api = policyApi(open.t);
    await pendingNote(open, 'production');
    const id = await api.created('production');
    assert.equal((await api.approve(id, 'production')).status, 'approved');
    await open.t.settle();
    assert.equal((await api.run(id)).status, 'approved', 'an open window alone starts nothing');
    const res = await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production' });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.body.status, 'applying');
    await open.t.settle();
    assert.equal((await api.run(id)).status, 'succeeded');
    const events = await api.events(id);
    const types = events.map((e) => e.type);
    assert.ok(types.indexOf('apply.confirmed') >= 0 && types.indexOf('apply.confirmed') < types.indexOf('workers.paused'), types.join(', '));
    const confirmation = events.find((e) => e.type === 'apply.confirmed')!;
    assert.deepEqual([confirmation.actor, confirmation.details.outcome], ['olga', 'applying']);
    assert.equal(events.filter((e) => e.type === 'run.scheduled').length, 0, 'never scheduled');
  });

  test('staging (auto): the approval schedules it and the tick applies it, no confirmation needed', async () => {
    const api = policyApi(closed.t);
    await pendingNote(closed, 'staging');
    const id = await api.created('staging');
    const approved = await api.approve(id, 'staging');
    assert.equal(approved.status, 'scheduled');
    assert.deepEqual((await api.tick(new Date())).started, [id]);
    await closed.t.settle();
    assert.equal((await api.run(id)).status, 'succeeded');
    const types = (await api.events(id)).map((e) => e.type);
    assert.equal(types.includes('apply.confirmed'), false);
    assert.equal(types.includes('apply.awaiting_confirmation'), false);
  });
});
