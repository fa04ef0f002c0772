import type { OwnPause } from './workers.js';

/** `list` with `pause` added once: the ETL pauses a run made, so later work on it lifts them as its own. */
export function withPause(list: OwnPause[] | undefined, pause: OwnPause): OwnPause[] {
  const all = list ?? [];
  return all.some((p) => p.pausedBy === pause.pausedBy && p.pauseReason === pause.pauseReason) ? all : [...all, pause];
}
