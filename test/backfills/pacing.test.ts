// The executor's pure decisions: batch size under a rate limit, pacing,
// pressure (active sessions and replica lag), windows and freezes, and how a
// failed batch's error is classified.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backoffMs, classifyError, pressureBackoffMs, describeError, effectiveBatchSize, Pacer, pressureReason, windowGate,
} from '../../services/backfills/pacing.js';

const limits = { backfillPressure: { maxActiveSessions: 10, maxReplicaLagSeconds: 5 } };

test('batches hold at most a fifth of a second of the rate limit', () => {
  assert.equal(effectiveBatchSize(1000, null), 1000);
  assert.equal(effectiveBatchSize(1000, 4000), 800);
  assert.equal(effectiveBatchSize(100, 4000), 100);
  assert.equal(effectiveBatchSize(1000, 3), 1);
});

test('the pacer lets batch k start once k batches fit the rate', () => {
  let now = 0;
  const pacer = new Pacer(1000, () => now);
  assert.equal(pacer.delayMs(), 0);
  pacer.add(200);
  assert.equal(pacer.delayMs(), 200);
  now = 50;
  assert.equal(pacer.delayMs(), 150);
  now = 400;
  assert.equal(pacer.delayMs(), 0, 'a slow batch earns no burst beyond the rate');
  assert.equal(pacer.rate(), 500);
  pacer.reset();
  assert.equal(pacer.delayMs(), 0);
  assert.equal(new Pacer(null, () => now).delayMs(), 0);
});

test('pressure: too many active sessions, or a replica lagging, and only then', () => {
  assert.equal(pressureReason({ active: 10, lagSeconds: null }, limits), null);
  assert.match(pressureReason({ active: 11, lagSeconds: null }, limits)!, /11 active sessions \(more than 10\)/);
  assert.equal(pressureReason({ active: 0, lagSeconds: 5 }, limits), null);
  assert.match(pressureReason({ active: 0, lagSeconds: 12.34 }, limits)!, /replica replay lag 12\.3 s \(more than 5 s\)/);
  assert.deepEqual([1, 2, 3, 6, 10].map(backoffMs), [1000, 2000, 4000, 30000, 30000]);
  assert.deepEqual([1, 2, 3, 4, 5, 10].map(pressureBackoffMs), [500, 1000, 2000, 4000, 5000, 5000]);
});

test('windows and freezes gate only windowOnly jobs', () => {
  const env = {
    windows: [{ cron: '0 2 * * *', durationMinutes: 60, timezone: 'UTC' }],
    freezes: [{ from: new Date('2026-12-20T00:00:00Z'), to: new Date('2027-01-05T00:00:00Z'), reason: 'holidays' }],
  };
  assert.deepEqual(windowGate(env, false, new Date('2026-06-01T12:00:00Z')), { open: true });
  assert.deepEqual(windowGate(env, true, new Date('2026-06-01T02:30:00Z')), { open: true });
  const closed = windowGate(env, true, new Date('2026-06-01T12:00:00Z'));
  assert.equal(closed.open, false);
  assert.match((closed as { reason: string }).reason, /next opens 2026-06-02T02:00:00.000Z/);
  assert.equal((closed as { retryInMs: number }).retryInMs, 60_000, 're-checked at least every minute');
  const soon = windowGate(env, true, new Date('2026-06-02T01:59:30Z'));
  assert.equal((soon as { retryInMs: number }).retryInMs, 30_000, 'or when the window opens');
  const frozen = windowGate(env, true, new Date('2026-12-24T02:30:00Z'));
  assert.match((frozen as { reason: string }).reason, /frozen until 2027-01-05T00:00:00.000Z \(holidays\)/);
  assert.deepEqual(windowGate({ windows: [], freezes: [] }, true, new Date()), { open: true }, 'no windows: any time');
});

test('errors: row data, transient, unreachable, or fatal', () => {
  const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  assert.equal(classifyError(pgError('22P02')), 'row');
  assert.equal(classifyError(pgError('23505')), 'row');
  assert.equal(classifyError(pgError('P0001')), 'row');
  assert.equal(classifyError(pgError('55P03')), 'transient');
  assert.equal(classifyError(pgError('57014')), 'transient');
  assert.equal(classifyError(pgError('40P01')), 'transient');
  assert.equal(classifyError(pgError('ECONNREFUSED')), 'connection');
  assert.equal(classifyError(new Error('Connection terminated unexpectedly')), 'connection');
  assert.equal(classifyError(pgError('42703')), 'fatal');
  assert.equal(classifyError(pgError('42501')), 'fatal');
  const described = describeError(Object.assign(new Error('could not connect to postgres://u:secret@db/x'), { code: '08006', detail: 'more' }));
  assert.equal(described.sqlstate, '08006');
  assert.doesNotMatch(described.message, /secret/);
  // DETAIL can quote the row's values; failures are readable by every role.
  const rowError = describeError(Object.assign(new Error('null value in column "power" violates not-null constraint'), { code: '23502', detail: 'Failing row contains (1, tok_SECRET123, null).' }));
  assert.equal(rowError.message, 'null value in column "power" violates not-null constraint');
});
