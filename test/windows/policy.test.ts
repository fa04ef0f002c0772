// The scheduling policy (services/scheduler/policy.ts): when an approved run
// is due, what the tick does with it, and when an "at" time is refused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideAtTick, firstSlot, marginFor, refuseAt, windowForApply, type Calendar } from '../../services/scheduler/policy.js';

const d = (iso: string) => new Date(iso);
const MIN = 60_000;
const iso = (x: Date | null | undefined) => x?.toISOString() ?? null;

// Short 01:00 window (30 min) and a long 04:00 window (3 h), UTC; a freeze on 3 June.
const cal: Calendar = {
  windows: [{ cron: '0 1 * * *', durationMinutes: 30, timezone: 'UTC' }, { cron: '0 4 * * *', durationMinutes: 180, timezone: 'UTC' }],
  freezes: [{ from: d('2026-06-03T00:00:00Z'), to: d('2026-06-04T00:00:00Z'), reason: 'release freeze' }],
};
const anyTime: Calendar = { windows: [], freezes: cal.freezes };

describe('margin', () => {
  test('a quarter of the estimate, at least a minute', () => {
    assert.equal(marginFor(0), 60_000);
    assert.equal(marginFor(100_000), 60_000);
    assert.equal(marginFor(40 * MIN), 10 * MIN);
  });
});

describe('first slot of an approved run', () => {
  test('mode window: the first window the estimate plus margin fits in', () => {
    const small = firstSlot(cal, 'window', 5 * MIN, d('2026-06-01T00:00:00Z'))!;
    assert.equal(iso(small.at), '2026-06-01T01:00:00.000Z');
    const big = firstSlot(cal, 'window', 60 * MIN, d('2026-06-01T00:00:00Z'))!;
    assert.equal(iso(big.at), '2026-06-01T04:00:00.000Z', 'the 30-minute window is too short for 60 + 15 min');
    assert.equal(iso(big.window!.end), '2026-06-01T07:00:00.000Z');
    const inWindow = firstSlot(cal, 'window', 60 * MIN, d('2026-06-01T05:00:00Z'))!;
    assert.equal(iso(inWindow.at), '2026-06-01T05:00:00.000Z', 'an open window that still fits: due now');
    const tooLate = firstSlot(cal, 'window', 60 * MIN, d('2026-06-01T06:00:00Z'))!;
    assert.equal(iso(tooLate.at), '2026-06-02T04:00:00.000Z', 'only 60 min left: the next day');
    const frozen = firstSlot(cal, 'window', 60 * MIN, d('2026-06-02T08:00:00Z'))!;
    assert.equal(iso(frozen.at), '2026-06-04T04:00:00.000Z', 'the frozen day is skipped');
    assert.equal(firstSlot(cal, 'window', 10 * 60 * MIN, d('2026-06-01T00:00:00Z')), null, 'no window is ever long enough');
  });

  test('mode now: as soon as a window is open, however long the estimate', () => {
    assert.equal(iso(firstSlot(cal, 'now', 10 * 60 * MIN, d('2026-06-01T00:10:00Z'))!.at), '2026-06-01T01:00:00.000Z');
    assert.equal(iso(firstSlot(cal, 'now', 10 * 60 * MIN, d('2026-06-01T01:10:00Z'))!.at), '2026-06-01T01:10:00.000Z');
  });

  test('mode at: the requested time', () => {
    const slot = firstSlot(cal, 'at', 0, d('2026-06-01T00:00:00Z'), d('2026-06-01T05:00:00Z'))!;
    assert.equal(iso(slot.at), '2026-06-01T05:00:00.000Z');
    assert.equal(iso(slot.window!.start), '2026-06-01T04:00:00.000Z');
  });

  test('no windows: now, or when the freeze ends', () => {
    assert.equal(iso(firstSlot(anyTime, 'window', 60 * MIN, d('2026-06-01T10:00:00Z'))!.at), '2026-06-01T10:00:00.000Z');
    assert.equal(iso(firstSlot(anyTime, 'now', 0, d('2026-06-03T10:00:00Z'))!.at), '2026-06-04T00:00:00.000Z');
    assert.equal(firstSlot(anyTime, 'now', 0, d('2026-06-01T10:00:00Z'))!.window, null);
  });
});

describe('"at" validation at run creation', () => {
  test('inside a window: fine; outside or frozen: the reason', () => {
    assert.equal(refuseAt(cal, d('2026-06-01T04:30:00Z')), null);
    assert.match(refuseAt(cal, d('2026-06-01T08:00:00Z'))!, /not inside a maintenance window \(the next one after it opens 2026-06-02T01:00:00.000Z/);
    assert.match(refuseAt(cal, d('2026-06-03T04:30:00Z'))!, /falls in the freeze .*release freeze/);
    assert.equal(refuseAt(anyTime, d('2026-06-01T08:00:00Z')), null, 'no windows: any time outside freezes');
    assert.match(refuseAt(anyTime, d('2026-06-03T08:00:00Z'))!, /freeze/);
  });
});

describe('the tick', () => {
  test('starts a due run in an open window that still fits; the deadline is the window end', () => {
    const decision = decideAtTick(cal, 'window', 60 * MIN, d('2026-06-01T04:10:00Z'));
    assert.deepEqual({ ...decision, window: undefined }, { kind: 'start', window: undefined, deadline: d('2026-06-01T07:00:00Z') });
  });

  test('window closed: the next window that fits', () => {
    const decision = decideAtTick(cal, 'window', 60 * MIN, d('2026-06-01T07:30:00Z'));
    assert.equal(decision.kind, 'reschedule');
    if (decision.kind !== 'reschedule') return;
    assert.match(decision.reason, /no maintenance window is open/);
    assert.equal(iso(decision.next!.at), '2026-06-02T04:00:00.000Z');
  });

  test('estimate no longer fits the rest of the window: the next one', () => {
    const decision = decideAtTick(cal, 'window', 60 * MIN, d('2026-06-01T06:00:00Z'));
    assert.equal(decision.kind, 'reschedule');
    if (decision.kind !== 'reschedule') return;
    assert.match(decision.reason, /no longer fits before the window closes at 2026-06-01T07:00:00.000Z/);
    assert.equal(iso(decision.next!.at), '2026-06-02T04:00:00.000Z');
  });

  test('mode now ignores the fit, not the window; a freeze always wins', () => {
    assert.equal(decideAtTick(cal, 'now', 600 * MIN, d('2026-06-01T06:59:00Z')).kind, 'start');
    const frozen = decideAtTick(anyTime, 'now', 0, d('2026-06-03T06:00:00Z'));
    assert.equal(frozen.kind, 'reschedule');
    if (frozen.kind === 'reschedule') {
      assert.match(frozen.reason, /frozen until 2026-06-04T00:00:00.000Z \(release freeze\)/);
      assert.equal(iso(frozen.next!.at), '2026-06-04T00:00:00.000Z');
    }
  });

  test('no windows: starts at once, retries stop at the next freeze', () => {
    assert.deepEqual(decideAtTick(anyTime, 'window', 0, d('2026-06-02T10:00:00Z')), { kind: 'start', window: null, deadline: d('2026-06-03T00:00:00Z') });
  });

  test('nothing fits any more: rescheduling has no next slot', () => {
    const decision = decideAtTick(cal, 'window', 10 * 60 * MIN, d('2026-06-01T04:10:00Z'));
    assert.deepEqual(decision.kind === 'reschedule' && decision.next, null);
  });
});

describe('applying by hand', () => {
  test('inside a window: open, deadline at its end; outside: closed with the next window; no windows: open', () => {
    const inside = windowForApply(cal, d('2026-06-01T04:30:00Z'));
    assert.equal(inside.open, true);
    assert.equal(iso(inside.deadline), '2026-06-01T07:00:00.000Z');
    const outside = windowForApply(cal, d('2026-06-01T08:00:00Z'));
    assert.equal(outside.open, false);
    assert.equal(iso(outside.next!.start), '2026-06-02T01:00:00.000Z');
    assert.equal(iso(outside.deadline), '2026-06-03T00:00:00.000Z', 'an override still stops retrying at the next freeze');
    assert.equal(windowForApply(anyTime, d('2026-06-01T08:00:00Z')).open, true);
  });
});
