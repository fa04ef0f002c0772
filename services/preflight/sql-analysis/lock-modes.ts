import type { LockMode } from './types.js';

// Weakest to strongest, as in the PostgreSQL 15 table-level lock table.
const ORDER: readonly LockMode[] = [
  'none', 'ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE',
];

export function strongestLock(locks: Iterable<LockMode>): LockMode {
  let max: LockMode = 'none';
  for (const lock of locks) if (ORDER.indexOf(lock) > ORDER.indexOf(max)) max = lock;
  return max;
}

/** LOCK TABLE's `mode` is PostgreSQL's LOCKMODE number, 1 (AccessShareLock) to 8 (AccessExclusiveLock). */
export function lockModeFromNumber(mode: number): LockMode {
  return ORDER[mode] ?? 'ACCESS EXCLUSIVE';
}
