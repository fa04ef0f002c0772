import { rows, type Queryable } from '../../../database/db.js';
import { relationsWithData } from '../../../database/sql/observe.js';
import type { Observation, PreExisting } from './types.js';

/** The target's size of every relation the observations name (those it does not have are absent: new in the run). */
export async function readPreExisting(target: Queryable, observations: Observation[]): Promise<Map<string, PreExisting>> {
  const names = [...new Set(observations.flatMap((o) => [...o.locks, ...o.rewrites, ...o.validations, ...o.scans, ...o.drops].map((x) => x.relation)))];
  if (names.length === 0) return new Map();
  const found = await rows<{ name: string; rows: number; bytes: number }>(target, relationsWithData(names));
  return new Map(found.map((r) => [r.name, { rows: Math.max(0, r.rows), bytes: r.bytes }]));
}
