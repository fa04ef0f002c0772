import {
  firstUnfrozen, fits, freezeAt, nextFittingWindow, nextFreezeStart, nextWindows, openWindowAt,
  type FreezeSpec, type Interval, type WindowSpec,
} from '../windows/windows.js';

// When a run may start, as pure functions of the environment's windows and
// freezes, the run's schedule mode, the preflight estimate and "now".

export type ScheduleMode = 'window' | 'now' | 'at';

export interface Calendar {
  windows: readonly WindowSpec[];
  freezes: readonly FreezeSpec[];
}

export interface Slot {
  /** When the run becomes due. */
  at: Date;
  /** The window it is due in; null when the environment has no windows. */
  window: Interval | null;
}

export type TickDecision =
  | { kind: 'start'; window: Interval | null; deadline: Date | null }
  | { kind: 'reschedule'; reason: string; next: Slot | null };

/**
 * Room kept free in a window beyond the estimate (which holds the backup and
 * the migrations, services/preflight/impact.ts): verification, the worker
 * pause and estimation error are not in it. A quarter of it, at least a minute.
 */
export function marginFor(estimateMs: number): number {
  return Math.max(60_000, Math.ceil(Math.max(0, estimateMs) * 0.25));
}

const later = (a: Date, b: Date) => (a.getTime() >= b.getTime() ? a : b);

/** The first time at or after `now` a run of this mode may start, or null when no window within the search bound will do. */
export function firstSlot(cal: Calendar, mode: ScheduleMode, estimateMs: number, now: Date, at: Date | null = null): Slot | null {
  if (mode === 'at' && at) return { at, window: openWindowAt(cal.windows, cal.freezes, at) };
  if (cal.windows.length === 0) return { at: firstUnfrozen(cal.freezes, now), window: null };
  const window = mode === 'window'
    ? nextFittingWindow(cal.windows, cal.freezes, now, estimateMs, marginFor(estimateMs))
    : nextWindows(cal.windows, cal.freezes, now, 1)[0] ?? null;
  return window ? { at: later(window.start, now), window } : null;
}

/** Why a requested "at" time cannot be honoured, or null when it can. */
export function refuseAt(cal: Calendar, at: Date): string | null {
  const freeze = freezeAt(cal.freezes, at);
  if (freeze) return `falls in the freeze ${freeze.from.toISOString()} to ${freeze.to.toISOString()} (${freeze.reason})`;
  if (cal.windows.length && !openWindowAt(cal.windows, cal.freezes, at)) {
    const next = nextWindows(cal.windows, cal.freezes, at, 1)[0];
    return `is not inside a maintenance window${next ? ` (the next one after it opens ${next.start.toISOString()} and closes ${next.end.toISOString()})` : ''}`;
  }
  return null;
}

/**
 * For an apply asked for now (the API): is the environment inside a window
 * (or has none), which one, and where lock retries must stop. Freezes are
 * the caller's first check.
 */
export function windowForApply(cal: Calendar, now: Date): { open: boolean; window: Interval | null; deadline: Date | null; next: Interval | null } {
  if (cal.windows.length === 0) return { open: true, window: null, deadline: nextFreezeStart(cal.freezes, now), next: null };
  const window = openWindowAt(cal.windows, cal.freezes, now);
  if (window) return { open: true, window, deadline: window.end, next: null };
  return { open: false, window: null, deadline: nextFreezeStart(cal.freezes, now), next: nextWindows(cal.windows, cal.freezes, now, 1)[0] ?? null };
}

/**
 * At the tick, for a due run: start now (and stop retrying locks at the
 * window's end), or move to a later slot because the window closed, the
 * estimate no longer fits what is left of it, or a freeze began.
 */
export function decideAtTick(cal: Calendar, mode: ScheduleMode, estimateMs: number, now: Date): TickDecision {
  const retry = (reason: string): TickDecision => ({ kind: 'reschedule', reason, next: firstSlot(cal, mode === 'at' ? 'now' : mode, estimateMs, now) });
  const freeze = freezeAt(cal.freezes, now);
  if (freeze) return retry(`frozen until ${freeze.to.toISOString()} (${freeze.reason})`);
  if (cal.windows.length === 0) return { kind: 'start', window: null, deadline: nextFreezeStart(cal.freezes, now) };
  const window = openWindowAt(cal.windows, cal.freezes, now);
  if (!window) return retry('no maintenance window is open');
  if (mode === 'window' && !fits(window, now, estimateMs, marginFor(estimateMs))) {
    return retry(`the estimate (${Math.round(estimateMs / 1000)} s plus ${Math.round(marginFor(estimateMs) / 1000)} s margin) no longer fits before the window closes at ${window.end.toISOString()}`);
  }
  return { kind: 'start', window, deadline: window.end };
}
