// Wall-clock arithmetic in an IANA time zone with nothing but Intl: the
// offset of a zone at an instant, and the instant a local wall time names
// (which across a DST change may be none or two).

export interface LocalDate {
  year: number;
  month: number;
  day: number;
}

const HOUR = 3_600_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

function wallParts(timeZone: string, instantMs: number): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  const out = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(timeZone).formatToParts(new Date(instantMs))) {
    if (part.type in out) out[part.type as keyof typeof out] = Number(part.value);
  }
  if (out.hour === 24) out.hour = 0;
  return out;
}

/** The zone's UTC offset at an instant, in ms (Europe/Berlin in summer: +7,200,000). */
export function offsetAt(timeZone: string, instantMs: number): number {
  const p = wallParts(timeZone, instantMs);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(instantMs / 1000) * 1000;
}

/** The local calendar date of an instant in the zone. */
export function localDateOf(timeZone: string, instantMs: number): LocalDate {
  const p = wallParts(timeZone, instantMs);
  return { year: p.year, month: p.month, day: p.day };
}

export function nextLocalDate(d: LocalDate): LocalDate {
  const next = new Date(Date.UTC(d.year, d.month - 1, d.day + 1));
  return { year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() };
}

/**
 * Turns wall times of one local day into instants. A day without an offset
 * change maps with one subtraction; on a DST day each time is resolved the
 * way RFC 5545 (and Temporal's "compatible") does: a time that occurs twice
 * means the earlier instant, a time skipped by the jump is read with the
 * offset before the gap (02:30 on a spring-forward night becomes 03:30).
 */
export function dayResolver(timeZone: string, date: LocalDate): (secondOfDay: number) => number {
  const midnight = Date.UTC(date.year, date.month - 1, date.day);
  // Offsets span -12 h to +14 h: these two instants bracket the whole local day.
  const before = offsetAt(timeZone, midnight - 14 * HOUR);
  const after = offsetAt(timeZone, midnight + 36 * HOUR);
  if (before === after) return (secondOfDay) => midnight + secondOfDay * 1000 - before;
  return (secondOfDay) => {
    const wall = midnight + secondOfDay * 1000;
    const valid = [wall - before, wall - after].filter((t, i) => offsetAt(timeZone, t) === (i === 0 ? before : after));
    return valid.length ? Math.min(...valid) : wall - before;
  };
}

/** True when the zone name is one Intl knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}
