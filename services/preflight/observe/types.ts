import type { LockMode } from '../sql-analysis/types.js';

export type ObserveMethod = 'event-triggers' | 'sampling';

/** When a fact was first seen: its transaction and event order (sampling: one moment for the whole migration). */
export interface Moment {
  xid: string;
  seq: number;
}

/** What one migration was seen doing on the throw-away copy. */
export interface Observation {
  migration: string;
  method: ObserveMethod;
  /** The strongest lock its session held on each relation ('schema.name'), and the command that first showed it. */
  locks: Array<{ relation: string; mode: LockMode; during: string | null; at: Moment }>;
  /** Tables whose every row was rewritten, and why. */
  rewrites: Array<{ relation: string; reason: string; during: string | null }>;
  /** Tables read in full by a command that neither rewrote them nor built an index: a validating scan (event triggers only). */
  validations: Array<{ relation: string; during: string }>;
  /** Tables read in full for any reason (index builds, validations, rewrites), with the command. */
  scans: Array<{ relation: string; during: string | null; at: Moment }>;
  /** Dropped tables, materialized views and columns ('schema.table' or 'schema.table.column'). */
  drops: Array<{ objectType: string; identity: string; relation: string; during: string | null }>;
  /** What the method could not see. */
  notes: string[];
}

/** A relation that exists on the target before the run, with what it holds there. */
export interface PreExisting {
  rows: number;
  bytes: number;
}
