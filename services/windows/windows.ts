import { occurrences } from './cron.js';

// Maintenance windows as plain functions of time (no I/O, no clock): every
// caller passes "now", so tests can stand anywhere in the calendar.
//
// A window is open at t when one of its cron occurrences s has
// s <= t < s + duration. Overlapping or touching windows of one environment
// form one window; freezes are cut out of them (a freeze always wins).

export interface WindowSpec {
  cron: string;
  durationMinutes: number;
  timezone: string;
}

export interface FreezeSpec {
  from: Date;
  to: Date;
  reason: string;
}

export interface Interval {
  start: Date;
  end: Date;
}

const MINUTE = 60_000;
/** A window that never closes (e.g. every minute for ten minutes) is reported in stretches of at most this. */
export const MAX_MERGED_MS = 31 * 24 * 60 * MINUTE;
/** Windows are looked for this far ahead at most. */
export const SEARCH_HORIZON_MS = 3 * 366 * 24 * 60 * MINUTE;

type Span = [number, number];

/** Occurrence spans of one window still open at or after fromMs, in start order. */
function* spansOf(w: WindowSpec, fromMs: number): Generator<Span> {
  const duration = w.durationMinutes * MINUTE;
  for (const start of occurrences(w.cron, w.timezone, fromMs - duration + 1)) yield [start, start + duration];
}

/** All windows' spans merged (k-way by start), overlapping or touching ones joined. */
function* merged(windows: readonly WindowSpec[], fromMs: number): Generator<Span> {
  const streams = windows.map((w) => spansOf(w, fromMs));
  const heads = streams.map((s) => s.next());
  let current: Span | null = null;
  for (;;) {
    let pick = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (!h.done && (pick < 0 || h.value[0] < (heads[pick]!.value as Span)[0])) pick = i;
    }
    if (pick < 0) break;
    const span = heads[pick]!.value as Span;
    heads[pick] = streams[pick]!.next();
    if (current && span[0] <= current[1]) {
      current[1] = Math.max(current[1], span[1]);
      if (current[1] - current[0] >= MAX_MERGED_MS) {
        const cut: Span = [current[0], current[0] + MAX_MERGED_MS];
        current = [cut[1], current[1]];
        yield cut;
      }
      continue;
    }
    if (current) yield current;
    current = [span[0], span[1]];
  }
  if (current) yield current;
}

/** The parts of a span outside every freeze. */
function cutFreezes(span: Span, freezes: readonly FreezeSpec[]): Span[] {
  let pieces: Span[] = [span];
  for (const f of freezes) {
    const from = f.from.getTime();
    const to = f.to.getTime();
    pieces = pieces.flatMap(([a, b]): Span[] => {
      if (to <= a || from >= b) return [[a, b]];
      const out: Span[] = [];
      if (from > a) out.push([a, from]);
      if (to < b) out.push([to, b]);
      return out;
    });
  }
  return pieces;
}

function* effective(windows: readonly WindowSpec[], freezes: readonly FreezeSpec[], fromMs: number): Generator<Span> {
  for (const span of merged(windows, fromMs)) {
    if (span[0] > fromMs + SEARCH_HORIZON_MS) return;
    for (const piece of cutFreezes(span, freezes)) if (piece[1] > fromMs) yield piece;
  }
}

const interval = ([a, b]: Span): Interval => ({ start: new Date(a), end: new Date(b) });

/**
 * The next `count` windows at or after `from`, freezes cut out. The first one
 * may already be open (start <= from). No windows configured: an empty list
 * (the environment may then be applied at any time outside its freezes).
 */
export function nextWindows(windows: readonly WindowSpec[], freezes: readonly FreezeSpec[], from: Date, count: number): Interval[] {
  const out: Interval[] = [];
  if (count <= 0) return out;
  for (const span of effective(windows, freezes, from.getTime())) {
    out.push(interval(span));
    if (out.length >= count) break;
  }
  return out;
}

/** The window open at `at` (freezes cut out), or null. */
export function openWindowAt(windows: readonly WindowSpec[], freezes: readonly FreezeSpec[], at: Date): Interval | null {
  const first = nextWindows(windows, freezes, at, 1)[0];
  return first && first.start.getTime() <= at.getTime() ? first : null;
}

/** True when the rest of the window from `now` (or from its start, if later) holds the estimate plus the margin. */
export function fits(window: Interval, now: Date, estimateMs: number, marginMs: number): boolean {
  const begin = Math.max(now.getTime(), window.start.getTime());
  return begin + Math.max(0, estimateMs) + Math.max(0, marginMs) <= window.end.getTime();
}

/** The first window at or after `from` whose remaining length fits; null if none within the search bound. */
export function nextFittingWindow(windows: readonly WindowSpec[], freezes: readonly FreezeSpec[], from: Date, estimateMs: number, marginMs: number): Interval | null {
  for (const span of effective(windows, freezes, from.getTime())) {
    const w = interval(span);
    if (fits(w, from, estimateMs, marginMs)) return w;
  }
  return null;
}

/** The freeze in force at `at`, or null. */
export function freezeAt(freezes: readonly FreezeSpec[], at: Date): FreezeSpec | null {
  return freezes.find((f) => f.from.getTime() <= at.getTime() && at.getTime() < f.to.getTime()) ?? null;
}

/** With no windows: the first instant at or after `from` outside every freeze. */
export function firstUnfrozen(freezes: readonly FreezeSpec[], from: Date): Date {
  let t = from;
  for (let f = freezeAt(freezes, t); f; f = freezeAt(freezes, t)) t = f.to;
  return t;
}

/** The start of the first freeze after `at`, or null: where an apply started outside windows must stop retrying. */
export function nextFreezeStart(freezes: readonly FreezeSpec[], at: Date): Date | null {
  const starts = freezes.map((f) => f.from.getTime()).filter((t) => t > at.getTime());
  return starts.length ? new Date(Math.min(...starts)) : null;
}
