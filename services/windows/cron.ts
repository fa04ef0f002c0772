import { parse } from 'node-cron';
import { dayResolver, localDateOf, nextLocalDate, type LocalDate } from './zone.js';

// Cron occurrences in a time zone. node-cron 4 parses the expression (the
// same parser that validated the config), but only computes next runs from
// the real clock; the scheduler needs them from any instant, so the walk over
// the calendar is ours. Day-of-month and day-of-week must both match, as in
// node-cron (not Vixie cron's "either").

export interface CronFields {
  seconds: number[];
  minutes: number[];
  hours: number[];
  daysOfMonth: Array<number | string>;
  months: number[];
  daysOfWeek: Array<number | string>;
}

const DAY_MS = 86_400_000;
/** Stop looking when a cron has no occurrence for this long (e.g. "0 0 30 2 *"). */
export const MAX_GAP_DAYS = 366;

const cache = new Map<string, CronFields>();

export function parseCron(expression: string): CronFields {
  let fields = cache.get(expression);
  if (!fields) {
    const p = parse(expression);
    const asc = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
    fields = { seconds: asc(p.second), minutes: asc(p.minute), hours: asc(p.hour), daysOfMonth: p.dayOfMonth, months: p.month, daysOfWeek: p.dayOfWeek };
    cache.set(expression, fields);
  }
  return fields;
}

const lastDayOfMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const weekdayOf = (year: number, month: number, day: number) => new Date(Date.UTC(year, month - 1, day)).getUTCDay();

function nearestWeekday(year: number, month: number, target: number): number {
  const last = lastDayOfMonth(year, month);
  if (target < 1 || target > last) return -1;
  const weekday = weekdayOf(year, month, target);
  if (weekday === 6) return target === 1 ? target + 2 : target - 1;
  if (weekday === 0) return target === last ? target - 2 : target + 1;
  return target;
}

function matchesDayOfMonth(field: Array<number | string>, { year, month, day }: LocalDate): boolean {
  for (const value of field) {
    if (value === day) return true;
    if (typeof value !== 'string') continue;
    if (value === 'L' && day === lastDayOfMonth(year, month)) return true;
    const weekday = /^(\d{1,2}|L)W$/.exec(value);
    if (weekday && nearestWeekday(year, month, weekday[1] === 'L' ? lastDayOfMonth(year, month) : Number(weekday[1])) === day) return true;
    const offset = /^L-(\d{1,2})$/.exec(value);
    if (offset && lastDayOfMonth(year, month) - Number(offset[1]) === day) return true;
  }
  return false;
}

function matchesDayOfWeek(field: Array<number | string>, { year, month, day }: LocalDate): boolean {
  const weekday = weekdayOf(year, month, day);
  for (const value of field) {
    if (value === weekday) return true;
    if (typeof value !== 'string') continue;
    const last = /^([0-7])L$/i.exec(value);
    if (last && Number(last[1]) % 7 === weekday && day + 7 > lastDayOfMonth(year, month)) return true;
    const nth = /^([0-7])#([1-5])$/.exec(value);
    if (nth && Number(nth[1]) % 7 === weekday && Math.floor((day - 1) / 7) + 1 === Number(nth[2])) return true;
  }
  return false;
}

export function matchesDay(fields: CronFields, date: LocalDate): boolean {
  return fields.months.includes(date.month) && matchesDayOfMonth(fields.daysOfMonth, date) && matchesDayOfWeek(fields.daysOfWeek, date);
}

/** The instants of one local day at which the cron fires, ascending, without duplicates. */
export function occurrencesOnDay(fields: CronFields, timeZone: string, date: LocalDate): number[] {
  if (!matchesDay(fields, date)) return [];
  const resolve = dayResolver(timeZone, date);
  const out: number[] = [];
  for (const h of fields.hours) {
    for (const m of fields.minutes) {
      for (const s of fields.seconds) out.push(resolve(h * 3600 + m * 60 + s));
    }
  }
  // A time in a spring-forward gap moves past the gap and may meet a real one.
  out.sort((a, b) => a - b);
  return out.filter((t, i) => i === 0 || t !== out[i - 1]);
}

/**
 * Every instant >= fromMs at which the cron fires in the zone, ascending.
 * Ends when there has been no occurrence for MAX_GAP_DAYS.
 */
export function* occurrences(expression: string, timeZone: string, fromMs: number): Generator<number> {
  const fields = parseCron(expression);
  let date = localDateOf(timeZone, fromMs);
  let lastSeen = fromMs;
  let previous = -Infinity;
  for (;;) {
    const dayStart = Date.UTC(date.year, date.month - 1, date.day);
    if (dayStart - 14 * 3_600_000 > lastSeen + MAX_GAP_DAYS * DAY_MS) return;
    for (const t of occurrencesOnDay(fields, timeZone, date)) {
      if (t < fromMs || t <= previous) continue;
      previous = t;
      lastSeen = t;
      yield t;
    }
    date = nextLocalDate(date);
  }
}
