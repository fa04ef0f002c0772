import type { StepOutcome } from '../../migrations/run-one.js';
import { describeDiff, isEmptyDiff, type FingerprintChange } from '../../migrations/schema-fingerprint.js';
import type { DownDiff } from './types.js';

// node-pg-migrate 9 refuses to run a migration down when its down is
// `false` (also a .sql file without a `-- Down Migration` section), when it
// exports no down and its up uses something the builder cannot reverse
// (pgm.sql, pgm.db), or when its down is not a function.
const NO_DOWN = /User has disabled down migration|Impossible to automatically infer down migration|exporting a 'down' function/;

export function isNoDown(error: StepOutcome['error']): boolean {
  return error !== null && NO_DOWN.test(error.message);
}

const same = (a: FingerprintChange['after'], b: FingerprintChange['after']) =>
  a === null ? b === null : b !== null && a.definition === b.definition && a.parent === b.parent;

/**
 * What one down left different from the schema before its up, without what
 * the downs before it (of later migrations) had already left: `current` is
 * the difference after this down, `previous` the one after the down that ran
 * just before it. A difference the earlier down left and this one did not
 * touch is that migration's, not this one's.
 */
export function ownDownDiff(current: Map<string, FingerprintChange>, previous: Map<string, FingerprintChange> | null): DownDiff | null {
  const own = [...current.values()].filter((c) => {
    const was = previous?.get(c.key);
    return !(was && same(was.after, c.after));
  });
  const described = describeDiff(own);
  return isEmptyDiff(described) ? null : described;
}
