import type { LockMode } from '../sql-analysis/types.js';

// pg_locks spells modes 'AccessExclusiveLock'; the linter 'ACCESS EXCLUSIVE'.
const MODES: Readonly<Record<string, LockMode>> = {
  AccessShareLock: 'ACCESS SHARE',
  RowShareLock: 'ROW SHARE',
  RowExclusiveLock: 'ROW EXCLUSIVE',
  ShareUpdateExclusiveLock: 'SHARE UPDATE EXCLUSIVE',
  ShareLock: 'SHARE',
  ShareRowExclusiveLock: 'SHARE ROW EXCLUSIVE',
  ExclusiveLock: 'EXCLUSIVE',
  AccessExclusiveLock: 'ACCESS EXCLUSIVE',
};

export function lockModeOf(pgLocksMode: string): LockMode {
  return MODES[pgLocksMode] ?? 'none';
}

/** Modes that block writes (SHARE and up); ACCESS EXCLUSIVE blocks reads too. */
export const BLOCKING: ReadonlySet<LockMode> = new Set<LockMode>(['SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE']);

// pg_event_trigger_table_rewrite_reason(): AT_REWRITE_* bits in tablecmds.h.
export function rewriteReason(bits: number): string {
  const reasons = [
    [1, 'its persistence changed (SET LOGGED/UNLOGGED)'],
    [2, 'a column default has to be written into every row'],
    [4, 'a column type changed'],
    [8, 'its access method changed'],
  ] as const;
  const named = reasons.filter(([bit]) => (bits & bit) !== 0).map(([, text]) => text);
  return named.length ? named.join(' and ') : 'PostgreSQL rewrote it';
}
