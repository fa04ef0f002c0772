// `sfm runs wait` follows the run's event stream: with a poll interval of an
// hour it still notices an approval at once. Where the service cannot stream
// (EVENT_STREAMS_MAX=0 here) it says so and polls.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { exits, listen, sfm } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function awaitingRun(t: TestApp): Promise<string> {
  const created = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'wait on the stream' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const run = await t.http().get(`/v1/runs/${created.body.id}`).set('authorization', bearer('vic'));
  assert.equal(run.body.status, 'awaiting_approval', JSON.stringify(run.body.error));
  return created.body.id as string;
}

/** Starts `sfm runs wait`, approves once it printed its first line, and returns what it did. */
async function waitWhileApproving(t: TestApp, url: string, id: string, interval: string) {
  let approved: Promise<unknown> | undefined;
  const result = await sfm(url, ['runs', 'wait', id, '--until', 'approved', '--interval', interval, '--timeout', '40s'], {
    as: 'vic',
    onStderr: (soFar) => {
      if (approved || !soFar.includes('status=awaiting_approval')) return;
      approved = sleep(300).then(() => t.http().post(`/v1/runs/${id}/approvals`).set('authorization', bearer('bob')).send({ role: 'engineering', decision: 'approve' }));
    },
  });
  const decision = (await approved) as { status: number; text: string } | undefined;
  assert.equal(decision?.status, 201, decision?.text);
  return result;
}

for (const mode of ['stream', 'fallback'] as const) {
  describe(`sfm runs wait (${mode})`, () => {
    let t: TestApp;
    let url: string;
    before(async () => {
      t = await startTestApp({ label: `cli_wait_${mode}`, env: mode === 'fallback' ? { EVENT_STREAMS_MAX: '0' } : { EVENTS_POLL_MS: '100' } });
      url = await listen(t);
    });
    after(async () => {
      await t.close();
    });

    if (mode === 'stream') {
      test('an approval given while it waits ends the wait at once, though it would poll only hourly', async () => {
        const id = await awaitingRun(t);
        const res = await waitWhileApproving(t, url, id, '1h');
        exits(res, 0, 'wait on the stream');
        const lines = res.stderr.trim().split('\n');
        assert.match(lines[0]!, /^status=awaiting_approval phase=/);
        assert.ok(lines.some((l) => /^status=(approved|scheduled) phase=(run\.approved|run\.scheduled|approval\.approved)/.test(l)), res.stderr);
        assert.ok(!res.stderr.includes('note:'), 'no fallback note while the stream works');
        assert.match(res.stdout, new RegExp(`^run ${id} reached approved: status=(approved|scheduled)\\n$`));
      });
    } else {
      test('without a stream it says so and polls at --interval', async () => {
        const id = await awaitingRun(t);
        const res = await waitWhileApproving(t, url, id, '200ms');
        exits(res, 0, 'wait by polling');
        assert.match(res.stderr, /^note: no event stream \(503 Event streaming is turned off/m);
        assert.match(res.stdout, new RegExp(`^run ${id} reached approved`));
      });
    }
  });
}
