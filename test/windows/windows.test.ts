// Window math (services/windows/): cron occurrences in IANA time zones across
// DST changes, freezes cut out, merging, fitting. Pure functions with an
// explicit "now": no database, no clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import cron from 'node-cron';
import { occurrences } from '../../services/windows/cron.js';
import { fits, firstUnfrozen, freezeAt, nextFittingWindow, nextFreezeStart, nextWindows, openWindowAt, type FreezeSpec, type Interval, type WindowSpec } from '../../services/windows/windows.js';
import { offsetAt } from '../../services/windows/zone.js';

const d = (iso: string) => new Date(iso);
const spans = (ws: Interval[]) => ws.map((w) => [w.start.toISOString(), w.end.toISOString()]);
const first = (expr: string, zone: string, from: string, n: number) => {
  const out: string[] = [];
  for (const t of occurrences(expr, zone, Date.parse(from))) {
    out.push(new Date(t).toISOString());
    if (out.length >= n) break;
  }
  return out;
};
const berlin = (cron: string, durationMinutes: number): WindowSpec => ({ cron, durationMinutes, timezone: 'Europe/Berlin' });
const utc = (cron: string, durationMinutes: number): WindowSpec => ({ cron, durationMinutes, timezone: 'UTC' });
const MIN = 60_000;

describe('time zone offsets', () => {
  test('Europe/Berlin switches at 01:00 UTC on the last Sundays of March and October 2026', () => {
    assert.equal(offsetAt('Europe/Berlin', Date.parse('2026-03-29T00:59:59Z')), 3_600_000);
    assert.equal(offsetAt('Europe/Berlin', Date.parse('2026-03-29T01:00:00Z')), 7_200_000);
    assert.equal(offsetAt('Europe/Berlin', Date.parse('2026-10-25T00:59:59Z')), 7_200_000);
    assert.equal(offsetAt('Europe/Berlin', Date.parse('2026-10-25T01:00:00Z')), 3_600_000);
    assert.equal(offsetAt('Asia/Kolkata', Date.parse('2026-06-01T00:00:00Z')), 5.5 * 3_600_000);
    assert.equal(offsetAt('UTC', Date.parse('2026-06-01T00:00:00Z')), 0);
  });
});

describe('cron occurrences in a time zone', () => {
  test('daily 02:00 Berlin across spring-forward (Sun 29 Mar 2026): the skipped 02:00 starts at 03:00 CEST', () => {
    assert.deepEqual(first('0 2 * * *', 'Europe/Berlin', '2026-03-27T12:00:00Z', 4), [
      '2026-03-28T01:00:00.000Z', // 02:00 CET
      '2026-03-29T01:00:00.000Z', // 02:00 does not exist: read with the offset before the gap = 03:00 CEST
      '2026-03-30T00:00:00.000Z', // 02:00 CEST
      '2026-03-31T00:00:00.000Z',
    ]);
  });

  test('daily 02:00 Berlin across fall-back (Sun 25 Oct 2026): the doubled 02:00 fires once, at the first one', () => {
    assert.deepEqual(first('0 2 * * *', 'Europe/Berlin', '2026-10-23T12:00:00Z', 4), [
      '2026-10-24T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T00:00:00.000Z', // 02:00 CEST (02:00 CET an hour later does not fire again)
      '2026-10-26T01:00:00.000Z', // 02:00 CET
      '2026-10-27T01:00:00.000Z',
    ]);
  });

  test('Sunday 02:30 Berlin on both DST Sundays of 2026', () => {
    assert.deepEqual(first('30 2 * * 0', 'Europe/Berlin', '2026-03-21T00:00:00Z', 3), [
      '2026-03-22T01:30:00.000Z', '2026-03-29T01:30:00.000Z' /* 03:30 CEST */, '2026-04-05T00:30:00.000Z',
    ]);
    assert.deepEqual(first('30 2 * * 0', 'Europe/Berlin', '2026-10-17T00:00:00Z', 3), [
      '2026-10-18T00:30:00.000Z', '2026-10-25T00:30:00.000Z' /* first 02:30, CEST */, '2026-11-01T01:30:00.000Z',
    ]);
  });

  test('times inside the spring gap that land on real times are not doubled', () => {
    // 02:00 and 02:30 move to 03:00 and 03:30 CEST, where the cron fires anyway.
    assert.deepEqual(first('0,30 2,3 29 3 *', 'Europe/Berlin', '2026-03-29T00:00:00Z', 5), [
      '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z', '2027-03-29T00:00:00.000Z', '2027-03-29T00:30:00.000Z', '2027-03-29T01:00:00.000Z',
    ]);
  });

  test('every 30 minutes through the Berlin fall-back night: the repeated hour fires once', () => {
    assert.deepEqual(first('*/30 * * * *', 'Europe/Berlin', '2026-10-24T23:30:00Z', 6), [
      '2026-10-24T23:30:00.000Z', // 01:30 CEST
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T02:00:00.000Z', // 03:00 CET (02:00 and 02:30 CET were already seen as wall times)
      '2026-10-25T02:30:00.000Z',
      '2026-10-25T03:00:00.000Z',
    ]);
  });

  test('America/New_York spring-forward (8 Mar 2026) and a zone without DST', () => {
    assert.deepEqual(first('30 2 * * *', 'America/New_York', '2026-03-07T00:00:00Z', 3), [
      '2026-03-07T07:30:00.000Z', '2026-03-08T07:30:00.000Z' /* 03:30 EDT */, '2026-03-09T06:30:00.000Z',
    ]);
    assert.deepEqual(first('0 2 * * *', 'Asia/Kolkata', '2026-06-01T00:00:00Z', 2), ['2026-06-01T20:30:00.000Z', '2026-06-02T20:30:00.000Z']);
  });

  test('day-of-month and day-of-week tokens: L, nth weekday, last weekday, ranges and names', () => {
    assert.deepEqual(first('0 0 L * *', 'UTC', '2026-01-15T00:00:00Z', 3), ['2026-01-31T00:00:00.000Z', '2026-02-28T00:00:00.000Z', '2026-03-31T00:00:00.000Z']);
    assert.deepEqual(first('0 12 * * 5#2', 'UTC', '2026-01-01T00:00:00Z', 2), ['2026-01-09T12:00:00.000Z', '2026-02-13T12:00:00.000Z']);
    assert.deepEqual(first('0 9 * * 1L', 'UTC', '2026-01-01T00:00:00Z', 2), ['2026-01-26T09:00:00.000Z', '2026-02-23T09:00:00.000Z']);
    assert.deepEqual(first('0 2 * * tue-thu', 'UTC', '2026-11-23T00:00:00Z', 4), [
      '2026-11-24T02:00:00.000Z', '2026-11-25T02:00:00.000Z', '2026-11-26T02:00:00.000Z', '2026-12-01T02:00:00.000Z',
    ]);
    // Both day fields must match (node-cron semantics): the 13th only when it is a Friday.
    assert.deepEqual(first('0 0 13 * 5', 'UTC', '2026-01-01T00:00:00Z', 2), ['2026-02-13T00:00:00.000Z', '2026-03-13T00:00:00.000Z']);
  });

  test('agrees with node-cron\'s own next runs (from the real clock, at times no DST change touches)', () => {
    for (const [expr, zone] of [['15 10 * * 1-5', 'Europe/Berlin'], ['0 12 * * 5#2', 'America/New_York'], ['0 0 L * *', 'Australia/Sydney'], ['*/20 9-17 * * *', 'Asia/Kolkata'], ['0 14 1,15 * *', 'UTC']] as const) {
      const task = cron.createTask(expr, () => undefined, { timezone: zone });
      try {
        const expected = task.getNextRuns(5).map((x) => x.toISOString());
        const from = new Date(Math.floor(Date.now() / 1000) * 1000 + 1000).toISOString();
        assert.deepEqual(first(expr, zone, from, 5), expected, `${expr} in ${zone}`);
      } finally {
        void task.destroy();
      }
    }
  });

  test('a cron with no occurrence within a year ends the search instead of looping', () => {
    assert.deepEqual(first('0 0 29 2 1', 'UTC', '2026-01-01T00:00:00Z', 1), [], 'the next Monday 29 February is in 2044');
    assert.deepEqual(first('0 0 29 2 *', 'UTC', '2026-03-01T00:00:00Z', 1), [], 'the next 29 Feb is more than 366 days away');
    assert.deepEqual(first('0 0 29 2 *', 'UTC', '2027-03-01T00:00:00Z', 1), ['2028-02-29T00:00:00.000Z']);
  });
});

describe('windows', () => {
  const prod = [berlin('0 2 * * 2-4', 120)];
  const holiday: FreezeSpec = { from: d('2026-12-20T00:00:00Z'), to: d('2027-01-05T00:00:00Z'), reason: 'holiday freeze' };

  test('a window lasts its duration in elapsed time, also on DST nights', () => {
    const daily = [berlin('0 2 * * *', 120)];
    assert.deepEqual(spans(nextWindows(daily, [], d('2026-03-28T12:00:00Z'), 2)), [
      ['2026-03-29T01:00:00.000Z', '2026-03-29T03:00:00.000Z'], // 03:00-05:00 CEST
      ['2026-03-30T00:00:00.000Z', '2026-03-30T02:00:00.000Z'],
    ]);
    assert.deepEqual(spans(nextWindows(daily, [], d('2026-10-24T12:00:00Z'), 2)), [
      ['2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z'], // 02:00 CEST to 03:00 CET
      ['2026-10-26T01:00:00.000Z', '2026-10-26T03:00:00.000Z'],
    ]);
  });

  test('open at t exactly when some start s has s <= t < s + duration (freezes cut out)', () => {
    const w = [utc('0 2 * * *', 60)];
    assert.equal(openWindowAt(w, [], d('2026-05-01T01:59:59.999Z')), null);
    assert.deepEqual(spans([openWindowAt(w, [], d('2026-05-01T02:00:00Z'))!]), [['2026-05-01T02:00:00.000Z', '2026-05-01T03:00:00.000Z']]);
    assert.deepEqual(spans([openWindowAt(w, [], d('2026-05-01T02:59:59.999Z'))!]), [['2026-05-01T02:00:00.000Z', '2026-05-01T03:00:00.000Z']]);
    assert.equal(openWindowAt(w, [], d('2026-05-01T03:00:00Z')), null);
    const freeze = { from: d('2026-05-01T02:30:00Z'), to: d('2026-05-01T04:00:00Z'), reason: 'release' };
    assert.deepEqual(spans([openWindowAt(w, [freeze], d('2026-05-01T02:10:00Z'))!]), [['2026-05-01T02:00:00.000Z', '2026-05-01T02:30:00.000Z']], 'cut at the freeze');
    assert.equal(openWindowAt(w, [freeze], d('2026-05-01T02:40:00Z')), null, 'a freeze always wins');
    assert.equal(openWindowAt([], [], d('2026-05-01T02:40:00Z')), null, 'no windows: none is open (callers treat that as "any time")');
  });

  test('the production windows skip the holiday freeze; the first listed window may already be open', () => {
    assert.deepEqual(spans(nextWindows(prod, [holiday], d('2026-12-14T12:00:00Z'), 5)), [
      ['2026-12-15T01:00:00.000Z', '2026-12-15T03:00:00.000Z'],
      ['2026-12-16T01:00:00.000Z', '2026-12-16T03:00:00.000Z'],
      ['2026-12-17T01:00:00.000Z', '2026-12-17T03:00:00.000Z'],
      ['2027-01-05T01:00:00.000Z', '2027-01-05T03:00:00.000Z'],
      ['2027-01-06T01:00:00.000Z', '2027-01-06T03:00:00.000Z'],
    ]);
    const open = nextWindows(prod, [holiday], d('2026-12-15T02:00:00Z'), 2);
    assert.deepEqual(spans(open)[0], ['2026-12-15T01:00:00.000Z', '2026-12-15T03:00:00.000Z']);
    assert.equal(nextWindows(prod, [], d('2026-12-15T02:00:00Z'), 100).length, 100, 'count up to 100');
    assert.deepEqual(nextWindows(prod, [], d('2026-12-15T02:00:00Z'), 0), []);
  });

  test('a freeze in the middle of a window splits it', () => {
    const w = [utc('0 0 * * *', 600)];
    const lunch = { from: d('2026-06-01T03:00:00Z'), to: d('2026-06-01T04:00:00Z'), reason: 'x' };
    assert.deepEqual(spans(nextWindows(w, [lunch], d('2026-05-31T12:00:00Z'), 3)), [
      ['2026-06-01T00:00:00.000Z', '2026-06-01T03:00:00.000Z'],
      ['2026-06-01T04:00:00.000Z', '2026-06-01T10:00:00.000Z'],
      ['2026-06-02T00:00:00.000Z', '2026-06-02T10:00:00.000Z'],
    ]);
  });

  test('overlapping or touching windows of one environment form one window', () => {
    const w = [utc('0 2 * * *', 120), utc('0 3 * * *', 120), utc('0 5 * * *', 30)];
    assert.deepEqual(spans(nextWindows(w, [], d('2026-06-01T00:00:00Z'), 2)), [
      ['2026-06-01T02:00:00.000Z', '2026-06-01T05:30:00.000Z'],
      ['2026-06-02T02:00:00.000Z', '2026-06-02T05:30:00.000Z'],
    ]);
  });

  test('fits: what is left of the window from now (or from its start) holds estimate plus margin', () => {
    const w = { start: d('2026-06-01T02:00:00Z'), end: d('2026-06-01T04:00:00Z') };
    assert.equal(fits(w, d('2026-06-01T01:00:00Z'), 100 * MIN, 20 * MIN), true, 'not open yet: the whole window counts');
    assert.equal(fits(w, d('2026-06-01T01:00:00Z'), 100 * MIN, 21 * MIN), false);
    assert.equal(fits(w, d('2026-06-01T03:00:00Z'), 50 * MIN, 10 * MIN), true, 'exactly fills the rest');
    assert.equal(fits(w, d('2026-06-01T03:00:00Z'), 50 * MIN, 10 * MIN + 1), false);
    assert.equal(fits(w, d('2026-06-01T04:00:00Z'), 0, 0), true, 'zero work fits even at the end');
    assert.equal(fits(w, d('2026-06-01T04:00:01Z'), 0, 0), false);
  });

  test('nextFittingWindow passes over windows too short for the estimate', () => {
    const w = [utc('0 1 * * *', 30), utc('0 4 * * *', 180)];
    const hit = nextFittingWindow(w, [], d('2026-06-01T00:00:00Z'), 60 * MIN, 15 * MIN)!;
    assert.deepEqual(spans([hit]), [['2026-06-01T04:00:00.000Z', '2026-06-01T07:00:00.000Z']]);
    const late = nextFittingWindow(w, [], d('2026-06-01T06:00:00Z'), 60 * MIN, 15 * MIN)!;
    assert.deepEqual(spans([late]), [['2026-06-02T04:00:00.000Z', '2026-06-02T07:00:00.000Z']], 'the open one has only 60 min left');
    assert.equal(nextFittingWindow(w, [], d('2026-06-01T00:00:00Z'), 24 * 60 * MIN, 0), null, 'nothing fits a day-long estimate');
  });

  test('freeze helpers: in force, first unfrozen instant (chained freezes), next freeze start', () => {
    const a = { from: d('2026-06-01T00:00:00Z'), to: d('2026-06-02T00:00:00Z'), reason: 'a' };
    const b = { from: d('2026-06-02T00:00:00Z'), to: d('2026-06-03T00:00:00Z'), reason: 'b' };
    assert.equal(freezeAt([a, b], d('2026-06-01T12:00:00Z'))?.reason, 'a');
    assert.equal(freezeAt([a, b], d('2026-06-03T00:00:00Z')), null, 'a freeze ends at "to"');
    assert.equal(firstUnfrozen([b, a], d('2026-06-01T12:00:00Z')).toISOString(), '2026-06-03T00:00:00.000Z');
    assert.equal(firstUnfrozen([a], d('2026-05-01T00:00:00Z')).toISOString(), '2026-05-01T00:00:00.000Z');
    assert.equal(nextFreezeStart([b, a], d('2026-05-01T00:00:00Z'))?.toISOString(), '2026-06-01T00:00:00.000Z');
    assert.equal(nextFreezeStart([a], d('2026-06-01T00:00:00Z')), null);
  });
});
